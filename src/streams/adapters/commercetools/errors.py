"""commercetools errors, and which failures a request may be retried after."""

from __future__ import annotations

from typing import Any, Literal

import aiohttp

# how a request may be retried: "read" (idempotent), "versioned" (an update guarded by
# `version`: re-sending the same body applies at most once), "create" (not idempotent)
Kind = Literal["read", "versioned", "create"]

TRANSIENT_STATUS = frozenset({502, 503, 504})
# 502/504 come from a gateway that may have forwarded the request: the write may have landed
AMBIGUOUS_STATUS = frozenset({502, 504})


class CommercetoolsError(Exception):
    """A non-success answer, carrying the API's ErrorResponse (``statusCode``/``errors``).

    ``status`` is 0 when no HTTP answer arrived (connection error or timeout).
    ``retry_after`` is the answer's ``Retry-After`` in seconds, when it had one.
    """

    retry_after: float | None = None

    def __init__(self, status: int, errors: list[dict[str, Any]], message: str) -> None:
        super().__init__(status, errors, message)
        self.status = status
        self.errors = errors
        self.message = message

    def __str__(self) -> str:
        return f"commercetools {self.status}: {self.message}"

    @property
    def codes(self) -> list[str]:
        return [str(e.get("code")) for e in self.errors if isinstance(e, dict)]

    def has_code(self, code: str) -> bool:
        return code in self.codes

    @property
    def current_version(self) -> int | None:
        """``currentVersion`` of a ConcurrentModification error, when the API sent one."""
        for e in self.errors:
            v = e.get("currentVersion") if isinstance(e, dict) else None
            if isinstance(v, int):
                return v
        return None


class AuthError(CommercetoolsError):
    """The token endpoint refused or failed (after its own retries). Requests waiting for
    the token were not sent, so callers' retry loops do not repeat it."""


class UpdateOutcomeUnknown(CommercetoolsError):
    """An update attempt got no definite answer (timeout, 502/504, dropped connection) and
    the request then failed: it may or may not have been applied. Not re-sent, because a
    relative action could apply twice and a re-decided one could build on our own write;
    re-read the resource and reconcile."""


def error_from_body(status: int, body: Any, context: str) -> tuple[list[dict[str, Any]], str]:
    """The ErrorResponse's errors and a message (``context: message``) of an answer."""
    errors: list[dict[str, Any]] = []
    message = f"HTTP {status}"
    if isinstance(body, dict):
        raw = body.get("errors")
        if isinstance(raw, list):
            errors = [e for e in raw if isinstance(e, dict)]
        elif "error" in body:  # OAuth2 (RFC 6749 §5.2) style from the auth endpoint
            errors = [{"code": body["error"], "message": body.get("error_description", "")}]
        message = str(body.get("message") or (errors[0].get("message") if errors else message))
    return errors, f"{context}: {message}"


def is_ambiguous(exc: BaseException) -> bool:
    """Whether the request may have been carried out although it failed."""
    if isinstance(exc, AuthError):
        return False  # no token, nothing sent
    if isinstance(exc, CommercetoolsError):
        return exc.status in AMBIGUOUS_STATUS
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return False  # never connected: the request was not sent
    return isinstance(exc, aiohttp.ClientError | TimeoutError)


def retryable(kind: Kind, exc: BaseException) -> bool:
    if isinstance(exc, AuthError):
        return False  # already retried by the token fetch itself
    if isinstance(exc, CommercetoolsError):
        if kind == "create":
            return exc.status == 503  # OverCapacity/PendingOperation: not carried out
        return exc.status in TRANSIENT_STATUS
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return True
    if isinstance(exc, aiohttp.ClientError | TimeoutError):
        # a create has no version guard: after a lost answer a retry could duplicate it
        return kind != "create"
    return False

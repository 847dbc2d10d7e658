"""The commercetools side of the HTTP seam (:mod:`streams.adapters.http`): OAuth2 client
credentials, authenticated project requests, retries by request kind, versioned updates.

Token cached until shortly before ``expires_in`` and re-fetched once on a 401; 502/503/504
and connection errors retried with jittered exponential backoff (a create only when it was
certainly not carried out). Secrets (client secret, tokens) are scrubbed from error
messages; they never reach logs or reprs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import orjson

from streams.adapters import http
from streams.adapters.codecs import redact
from streams.adapters.commercetools.errors import (
    AuthError,
    CommercetoolsError,
    Kind,
    UpdateOutcomeUnknown,
    error_from_body,
    is_ambiguous,
    retryable,
)
from streams.config import Settings

log = logging.getLogger(__name__)

Json = dict[str, Any]
Action = dict[str, Any]
T = TypeVar("T")


def seg(value: str) -> str:
    """One URL path segment (ids, keys and order numbers are caller data)."""
    return quote(value, safe="")


@dataclass
class SendState:
    ambiguous: bool = False  # an attempt got no definite answer


class CtTransport:
    """Requests to one commercetools project; the resource APIs are built on it."""

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession | None,
        *,
        hooks: http.Hooks | None,
        retry: http.RetryPolicy,
    ) -> None:
        self.api = settings.ct_api_url.rstrip("/")
        self._auth_url = settings.ct_auth_url.rstrip("/")
        self.project = settings.ct_project_key
        self._client_id = settings.ct_client_id
        self._client_secret = settings.ct_client_secret
        self._scopes = settings.ct_scopes.strip()
        self.sessions = http.SessionOwner(
            session, aiohttp.ClientTimeout(total=settings.ct_timeout_s)
        )
        self.hooks = hooks
        self.retry = retry
        self.tokens = http.TokenCache(self._fetch_token)

    async def close(self) -> None:
        await self.sessions.close()

    # --- plumbing ----------------------------------------------------------------------
    def redact(self, text: str) -> str:
        secrets = [self._client_secret.get_secret_value(), *self.tokens.secrets()]
        return redact(text, secrets, basic_user=self._client_id)

    def error(
        self, operation: str, status: int, body: Any, retry_after: float | None = None
    ) -> CommercetoolsError:
        errors, message = error_from_body(status, body, operation)
        exc = CommercetoolsError(status, errors, self.redact(message))
        exc.retry_after = retry_after
        return exc

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        params: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: aiohttp.BasicAuth | None = None,
    ) -> tuple[http.Response, Any]:
        """One HTTP request; returns the answer and its parsed JSON body (or None)."""
        hdrs = dict(headers or {})
        data: Any = None
        if body is not None:
            data = orjson.dumps(body)
            hdrs["Content-Type"] = "application/json"
        elif form is not None:
            data = dict(form)
        answer = await http.exchange(
            self.sessions.session, method, url, operation=operation, hooks=self.hooks,
            timeout=self.sessions.timeout, params=params, data=data, headers=hdrs, auth=auth,
        )  # fmt: skip
        try:
            parsed = orjson.loads(answer.body) if answer.body else None
        except orjson.JSONDecodeError:
            parsed = None  # e.g. an HTML error page from a proxy
        return answer, parsed

    async def retrying(
        self,
        operation: str,
        kind: Kind,
        once: Callable[[], Awaitable[T]],
        state: SendState | None = None,
    ) -> T:
        """Run ``once`` with jittered exponential backoff on transient failures."""
        st = state or SendState()

        async def tracked() -> T:
            try:
                return await once()
            except Exception as exc:
                if is_ambiguous(exc):
                    st.ambiguous = True
                raise

        def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
            log.warning(
                "commercetools %s attempt %d failed (%s); retrying",
                operation,
                attempt,
                exc if isinstance(exc, CommercetoolsError) else type(exc).__name__,
            )

        try:
            return await http.with_retries(
                tracked,
                policy=self.retry,
                retryable=lambda e: retryable(kind, e),
                on_retry=on_retry,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            # str(exc) of aiohttp errors names host/port at most, never headers
            err = [{"code": "TransportError", "message": type(exc).__name__}]
            raise CommercetoolsError(
                0, err, self.redact(f"{operation}: no answer ({type(exc).__name__}: {exc})")
            ) from exc

    # --- auth --------------------------------------------------------------------------
    async def _fetch_token(self) -> http.Token:
        fields = {"grant_type": "client_credentials"}
        if self._scopes:
            fields["scope"] = self._scopes
        url = f"{self._auth_url}/oauth/token"
        basic = aiohttp.BasicAuth(self._client_id, self._client_secret.get_secret_value())

        async def once() -> Json:
            # The RAML declares grant_type/scope as query parameters, clients usually send a
            # form body, and the Node emulator reads scope only from the query: send both.
            answer, body = await self.exchange(
                "POST", url, operation="token", params=list(fields.items()), form=fields, auth=basic
            )
            if answer.status != 200 or not isinstance(body, dict):
                raise self.error("token", answer.status, body, answer.retry_after)
            return body

        try:
            body = await self.retrying("token", "read", once)
        except CommercetoolsError as exc:
            raise AuthError(exc.status, exc.errors, exc.message) from exc
        value = body.get("access_token")
        if not isinstance(value, str) or not value:
            raise AuthError(200, [], "token: response without access_token")
        expires_in = float(body.get("expires_in") or 3600)
        # a fifth of the lifetime early, at most 5 minutes
        return http.Token(value, http.renew_at(expires_in, max_margin_s=300.0, fraction=0.2))

    # --- project requests --------------------------------------------------------------
    async def call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        kind: Kind = "read",
        params: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        allow_404: bool = False,
        state: SendState | None = None,
    ) -> Any:
        """An authenticated project request; returns the JSON body (None for an allowed 404)."""
        url = f"{self.api}/{seg(self.project)}{path}"

        async def send() -> tuple[http.Response, Any]:
            for renewed in (False, True):
                tok = await self.tokens.get()
                auth = {"Authorization": f"Bearer {tok.value}"}
                answer, data = await self.exchange(
                    method, url, operation=operation, params=params, body=body, headers=auth
                )
                if answer.status != 401 or renewed:
                    break
                self.tokens.invalidate(tok.value)  # expired or revoked early: retry once
            return answer, data

        async def once() -> Any:
            answer, data = await send()
            if 200 <= answer.status < 300:
                return data
            if answer.status == 404 and allow_404:
                return None
            raise self.error(operation, answer.status, data, answer.retry_after)

        return await self.retrying(operation, kind, once, state)

    async def update(
        self, path: str, operation: str, version: int, actions: Sequence[Action]
    ) -> Json:
        """A versioned update; re-sending the same version after a lost answer is safe."""
        state = SendState()
        try:
            result: Json = await self.call(
                "POST",
                path,
                operation=operation,
                kind="versioned",
                body={"version": version, "actions": list(actions)},
                state=state,
            )
        except CommercetoolsError as exc:
            if state.ambiguous and (exc.status in (0, 409) or exc.status >= 500):
                raise UpdateOutcomeUnknown(
                    exc.status,
                    exc.errors,
                    f"{operation}: an earlier attempt got no answer, outcome unknown "
                    f"({exc.message})",
                ) from exc
            raise
        return result

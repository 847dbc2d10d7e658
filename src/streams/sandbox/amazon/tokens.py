"""The sandbox's Tokens API (2021-03-01): ``createRestrictedDataToken``, and the check that
restricted operations get a Restricted Data Token (RDT).

Amazon's DF ``getOrders`` and ``getOrder`` return the customer's ship-to address, so they
take an RDT as ``x-amz-access-token``, not the LWA access token (that is a 403
Unauthorized). An RDT opens only the resources it was created for: ``(method, path)``, the
path either a concrete one or Amazon's template with ``{purchaseOrderNumber}``. Amazon's
sandbox examples (``x-amzn-api-sandbox``) are answered as the model has them.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import orjson
from aiohttp import web

from streams.adapters.amazon_models import available, example, validate
from streams.sandbox.amazon.state import (
    BODY,
    STATE,
    SandboxState,
    _error,
    _errors,
    _json,
    _problems_to_errors,
)

OPERATION = "createRestrictedDataToken"
OPERATIONS = {OPERATION: ("POST", "/tokens/2021-03-01/restrictedDataToken")}
DF_ORDERS = "/vendor/directFulfillment/orders/2021-12-28/purchaseOrders"
# operation -> Amazon's path template of the restricted resource
RESTRICTED: dict[str, str] = {
    "getOrders": DF_ORDERS,
    "getOrder": DF_ORDERS + "/{purchaseOrderNumber}",
}
_TEMPLATES = [re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(t)) + "$")
              for t in RESTRICTED.values()]  # fmt: skip


def restricted_path(path: str) -> bool:
    """Whether ``path`` (concrete or a template) is a restricted resource the sandbox serves."""
    return path in RESTRICTED.values() or any(t.match(path) for t in _TEMPLATES)


def rdt_problem(state: SandboxState, token: str, operation: str, method: str, path: str) -> str:
    """Why ``token`` may not call restricted ``operation`` at ``path`` ("" = it may)."""
    entry = state.rdts.get(token)
    if entry is None:
        if token in state.tokens:
            return (
                f"{operation} returns restricted data (the ship-to address): call it with a "
                "Restricted Data Token from createRestrictedDataToken, not the LWA access token"
            )
        return "The access token you provided is revoked, malformed or invalid."
    expiry, resources = entry
    if expiry <= time.monotonic():
        return "The Restricted Data Token you provided has expired."
    if (method, path) in resources or (method, RESTRICTED[operation]) in resources:
        return ""
    return "The Restricted Data Token does not grant access to this resource."


def _example_answer(body: Any) -> tuple[int, dict[str, Any]] | None:
    for status in ("200", "400"):
        for ex in example("tokens", OPERATION, status):
            wanted = ((ex.get("request") or {}).get("parameters") or {}).get("body", {})
            if wanted.get("value") == body:
                return int(status), dict(ex.get("response") or {})
    return None


async def create_restricted_data_token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = request[BODY]
    canned = _example_answer(body)
    if canned is not None:
        status, answer = canned
        if status == 200:  # Amazon's example token works like any other
            state.rdts[answer["restrictedDataToken"]] = (
                time.monotonic() + float(answer.get("expiresIn", 3600)),
                frozenset(),
            )
        return _json(request, status, orjson.loads(orjson.dumps(answer)))
    problems = (
        validate("tokens", "CreateRestrictedDataTokenRequest", body) if available("tokens") else []
    )
    resources = body.get("restrictedResources") if isinstance(body, dict) else None
    if not problems and not (isinstance(resources, list) and resources):
        problems.append("restrictedResources: at least one restricted resource is required")
    if problems:
        return _errors(request, 400, _problems_to_errors(problems, "InvalidInput"))
    granted: set[tuple[str, str]] = set()
    for r in resources or []:
        method, path = str(r.get("method", "")), str(r.get("path", ""))
        if method != "GET" or not restricted_path(path):
            return _errors(
                request,
                400,
                [
                    _error(
                        "InvalidInput",
                        "Application does not have access to one or more requested resources.",
                        f"{method} {path}",
                    )
                ],
            )
        granted.add((method, path))
    token = "Atz.sprdt|" + secrets.token_urlsafe(120)
    state.rdts[token] = (time.monotonic() + state.config.rdt_ttl_s, frozenset(granted))
    return _json(request, 200, {"restrictedDataToken": token, "expiresIn": state.config.rdt_ttl_s})


HANDLERS = {OPERATION: create_restricted_data_token}

"""The middleware every SP-API operation goes through: auth, rate limits, faults, recording."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from streams.sandbox.amazon import tokens
from streams.sandbox.amazon.state import (
    API_ROUTES,
    BODY,
    RESPONSE_JSON,
    STATE,
    Handler,
    _error,
    _errors,
)


@web.middleware
async def _api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route_name = request.match_info.route.name
    if route_name not in request.app[API_ROUTES]:
        return await handler(request)
    operation = route_name
    state = request.app[STATE]
    request_id = str(uuid.uuid4())
    rate, _burst = state.config.rate_limit(operation)

    raw = await request.read()
    body: Any = None
    body_problem: tuple[int, dict[str, str]] | None = None
    if request.method == "POST":
        if request.content_type != "application/json":
            body_problem = (
                415,
                _error(
                    "UnsupportedMediaType",
                    "The request payload is in an unsupported format.",
                    request.content_type,
                ),
            )
        else:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                body = {"_raw": raw[:2000].decode("utf-8", "replace")}
                body_problem = (
                    400,
                    _error("InvalidInput", "The request body is not valid JSON.", str(exc)),
                )
    request[BODY] = body

    response = await _guarded(request, handler, operation, body_problem)
    response.headers["x-amzn-RequestId"] = request_id
    response.headers["x-amzn-RateLimit-Limit"] = str(float(rate))
    data = request.get(RESPONSE_JSON) or {}
    state.record(
        operation,
        {
            "operation": operation,
            "method": request.method,
            "path": request.rel_url.raw_path,  # as sent, percent-encoding intact
            "params": dict(request.match_info),
            "query": dict(request.query),
            "body": body,
            "status": response.status,
            # v1 wraps it in a payload, DF 2021-12-28 answers it on top
            "transactionId": (data.get("payload") or data).get("transactionId"),
            "errors": data.get("errors"),
            "requestId": request_id,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        },
    )
    return response


async def _guarded(
    request: web.Request,
    handler: Handler,
    operation: str,
    body_problem: tuple[int, dict[str, str]] | None,
) -> web.StreamResponse:
    state = request.app[STATE]
    latency = state.faults.latency(operation)
    if latency:
        await asyncio.sleep(latency)

    token = request.headers.get("x-amz-access-token", "")
    expiry = state.tokens.get(token) if token else None
    if operation in tokens.RESTRICTED:  # returns PII: a Restricted Data Token, not LWA's
        problem = tokens.rdt_problem(state, token, operation, request.method, request.path)
        if problem:
            denied = _error("Unauthorized", "Access to requested resource is denied.", problem)
            return _errors(request, 403, [denied])
    elif expiry is None:
        details = (
            "The access token you provided is revoked, malformed or invalid."
            if token
            else "The request has no x-amz-access-token header."
        )
        return _errors(
            request,
            403,
            [_error("Unauthorized", "Access to requested resource is denied.", details)],
        )
    elif expiry <= time.monotonic():
        return _errors(
            request, 403, [_error("Unauthorized", "The access token you provided has expired.")]
        )

    throttled = state.faults.throttled(operation)
    if not throttled and state.config.enforce_rate_limits:
        throttled = not state.bucket(operation).take()
    if throttled:
        return _errors(
            request,
            429,
            [_error("QuotaExceeded", "You exceeded your quota for the requested resource.")],
        )

    status = state.faults.server_error(operation)
    if status is not None:
        err = (
            _error("InternalFailure", "We encountered an internal error. Please try again.")
            if status == 500
            else _error("ServiceUnavailable", "Temporary overloading or maintenance of the server.")
        )
        return _errors(request, status, [err])

    if body_problem is not None:
        return _errors(request, body_problem[0], [body_problem[1]])
    return await handler(request)

"""Metrics of the HTTP clients (SP-API, commercetools) and the hooks that fill them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from streams.observability.registry import REGISTRY

SPAPI_RESPONSES = Counter(
    "streams_spapi_responses_total",
    "SP-API responses seen by the worker's SP-API clients (inventory sender, acknowledgement "
    "and ASN senders, PO poller), by operation and HTTP status (0 = no response, "
    "429 = throttled); retried ones included",
    ["operation", "status"],
    registry=REGISTRY,
)
SPAPI_BUDGET = Gauge(
    "streams_spapi_budget_requests_per_second",
    "This worker's part of Amazon's usage plan for an operation the group splits by "
    "partitions (requests/s; 0 while it owns none); summed over the group it stays within "
    "the plan",
    ["operation"],
    registry=REGISTRY,
)
CT_RESPONSES = Counter(
    "streams_ct_responses_total",
    "commercetools responses seen by the worker's clients (commands, entry fetches, "
    "reconcile, warehouse policy, sales orders), by operation and HTTP status (0 = no "
    "response; 401 = token rejected, 409 = concurrent modification, 5xx); retried ones "
    "included",
    ["operation", "status"],
    registry=REGISTRY,
)
AMAZON_UNVALIDATED = Counter(
    "streams_amazon_unvalidated_total",
    "Bodies sent to Amazon without model validation because the API's model is not "
    "available (set STREAMS_AMAZON_MODELS_DIR), by API",
    ["api"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "streams_http_client_request_duration_seconds",
    "Duration of one HTTP exchange with an outside system (one attempt: a retried call "
    "counts each attempt), by system (spapi, commercetools), operation and outcome (ok, "
    "client_error, throttled = 429, server_error = 5xx, no_response)",
    ["system", "operation", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)


def http_outcome(status: int) -> str:
    """The outcome class of an HTTP status (0 = no answer arrived)."""
    if status == 0:
        return "no_response"
    if status == 429:
        return "throttled"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


class SpApiResponses:
    """SP-API client hooks: every response as ``streams_spapi_responses_total`` and its
    duration in ``streams_http_client_request_duration_seconds{system="spapi"}``."""

    def on_response(self, operation: str, status: int, seconds: float) -> None:
        SPAPI_RESPONSES.labels(operation, str(status)).inc()
        HTTP_SECONDS.labels("spapi", operation, http_outcome(status)).observe(seconds)


class CtResponses:
    """commercetools client hooks: every response as ``streams_ct_responses_total`` and its
    duration in ``streams_http_client_request_duration_seconds{system="commercetools"}``."""

    def on_response(self, operation: str, status: int, seconds: float) -> None:
        CT_RESPONSES.labels(operation, str(status)).inc()
        HTTP_SECONDS.labels("commercetools", operation, http_outcome(status)).observe(seconds)

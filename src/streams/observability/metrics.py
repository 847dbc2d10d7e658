"""Every metric the product exports (one registry, Prometheus naming: base units, _total).

Dashboards and alert rules name only what is defined here; a test checks that.
"""

from __future__ import annotations

import platform

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)

# *_created series double the exposition for no use on dashboards
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)
# prometheus_client's own: process_* (CPU, memory, open files, start time) and python_gc_*
ProcessCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)
# (the library registers them on its default registry, which the worker does not serve)

BUILD_INFO = Gauge(
    "streams_build_info",
    "Always 1; the labels say what runs (package version, Python and Faust versions)",
    ["version", "python", "faust"],
    registry=REGISTRY,
)

RECORDS = Counter(
    "streams_records_total",
    "Records handled per input topic and outcome "
    "(applied, duplicate, stale, ignored, fetched, dlq)",
    ["topic", "outcome"],
    registry=REGISTRY,
)
DLQ = Counter(
    "streams_dlq_records_total",
    "Records sent to a dead-letter topic, by source topic and reason class",
    ["topic", "reason"],
    registry=REGISTRY,
)
UNMAPPED = Counter(
    "streams_unmapped_sku_events_total",
    "Stock changes for SKUs without a master mapping (not sent to Amazon)",
    registry=REGISTRY,
)
DELTAS = Counter(
    "streams_inventory_updates_total",
    "Availability records published to amazon.inventory-updates, by kind (delta, snapshot)",
    ["kind"],
    registry=REGISTRY,
)
PENDING = Gauge(
    "streams_queue_length",
    "Work waiting inside the worker, by queue (deltas, acks, ct_commands)",
    ["queue"],
    registry=REGISTRY,
)
OLDEST_PENDING = Gauge(
    "streams_debounce_oldest_pending_seconds",
    "Age of the longest-waiting unpublished SKU change",
    registry=REGISTRY,
)
DELTA_LATENCY = Histogram(
    "streams_inventory_delta_latency_seconds",
    "commercetools change (message time) -> availability published to Kafka",
    buckets=(0.25, 0.5, 1, 2, 2.5, 3, 5, 10, 15, 30, 60, 300),
    registry=REGISTRY,
)
ORDER_HOLDS = Counter(
    "streams_order_holds_total",
    "Storefront order lines holding stock until commercetools shows them, by outcome "
    "(placed, duplicate, settled: the entry showed the order, expired: no read showed it)",
    ["outcome"],
    registry=REGISTRY,
)
STOREFRONT_LATENCY = Histogram(
    "streams_storefront_to_amazon_seconds",
    "Storefront order (commercetools delivery time) -> availability published to Kafka",
    buckets=(0.25, 0.5, 1, 2, 2.5, 3, 5, 10, 15, 30, 60, 300),
    registry=REGISTRY,
)
REREADS = Counter(
    "streams_ct_rereads_total",
    "SKUs re-read from commercetools after storefront orders, by result (ok, error)",
    ["result"],
    registry=REGISTRY,
)
SWEEP_ENTRIES = Counter(
    "streams_ct_sweep_entries_total",
    "Inventory entries read by the changed-since sweep",
    registry=REGISTRY,
)
SWEEP_FINDINGS = Counter(
    "streams_ct_sweep_findings_total",
    "Stock changes the sweep applied before any notification did, by kind (expected: an "
    "order-driven change the worker was waiting for; missed: no notification announced it)",
    ["kind"],
    registry=REGISTRY,
)
SWEEP_LAG = Gauge(
    "streams_ct_sweep_lag_seconds",
    "How far the changed-since sweep's cursor is behind now",
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "streams_agent_batch_duration_seconds",
    "Time an agent spends on one batch of events",
    ["agent"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
BATCH_EVENTS = Histogram(
    "streams_agent_batch_events",
    "Events per batch an agent processes",
    ["agent"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
    registry=REGISTRY,
)
LAST_SUCCESS = Gauge(
    "streams_last_success_timestamp_seconds",
    "Unix time of the last successful step per flow",
    ["flow"],
    registry=REGISTRY,
)
LAG = Gauge(
    "kafka_consumergroup_group_lag",
    "Consumer lag in records per topic partition (kafka-lag-exporter naming)",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)
FETCHES = Counter(
    "streams_ct_entry_fetches_total",
    "Inventory entries read from commercetools for notifications without payload, by result",
    ["result"],
    registry=REGISTRY,
)

EXCEPTIONS = Counter(
    "streams_exceptions_total",
    "Owned exceptions raised or resolved, by kind, owner team and status",
    ["kind", "owner", "status"],
    registry=REGISTRY,
)
ACKS = Counter(
    "streams_acknowledgements_total",
    "Purchase-order acknowledgements by outcome (built, submitted, duplicate, invalid, rejected)",
    ["outcome"],
    registry=REGISTRY,
)
ACK_LATENCY = Histogram(
    "streams_po_ack_latency_seconds",
    "Purchase order taken in -> acknowledgement submitted to Amazon",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
    registry=REGISTRY,
)
ALLOCATIONS = Counter(
    "streams_po_line_decisions_total",
    "Purchase-order line decisions by status "
    "(Accepted, Backordered, Rejected, Partial, Hold, Cancelled)",
    ["status"],
    registry=REGISTRY,
)
TX_FAILURES = Counter(
    "streams_transaction_failures_total",
    "Amazon transactions that ended in Failure, by kind (acknowledgement, shipment, inventory)",
    ["kind"],
    registry=REGISTRY,
)
PO_CLOSED = Counter(
    "streams_po_closed_total",
    "Purchase orders Amazon closed, by how they ended "
    "(received, partially-received, cancelled: what shipped stays out of stock)",
    ["outcome"],
    registry=REGISTRY,
)
PO_POLLED = Counter(
    "streams_po_polled_total",
    "New or changed purchase orders the poller published to amazon.purchase-orders",
    registry=REGISTRY,
)
CT_COMMANDS = Counter(
    "streams_ct_commands_total",
    "ct.inventory-commands handled, by action and outcome "
    "(applied, duplicate = already applied, dlq, error = a failed attempt that is retried)",
    ["action", "outcome"],
    registry=REGISTRY,
)
CT_COMMAND_SECONDS = Histogram(
    "streams_ct_command_duration_seconds",
    "Time from picking up a command to its outcome in commercetools (retries included)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
RECONCILE = Counter(
    "streams_ct_reconcile_entries_total",
    "Inventory entries compared with the worker's stock state by the periodic "
    "reconciliation, by result (in_sync, differs, published)",
    ["result"],
    registry=REGISTRY,
)
ASNS = Counter(
    "streams_asn_total",
    "Shipment confirmations (ASNs) by outcome (built, pending = PO not acknowledged yet, "
    "invalid, duplicate, submitted, rejected = refused by the API, accepted, failed = "
    "transaction Failure)",
    ["outcome"],
    registry=REGISTRY,
)
INVOICES = Counter(
    "streams_invoices_total",
    "Vendor invoices by outcome (built, waiting = per-po mode, PO not fully shipped, invalid, "
    "duplicate, submitted, rejected = refused by the API, accepted, failed = transaction "
    "Failure)",
    ["outcome"],
    registry=REGISTRY,
)
ASN_LATENCY = Histogram(
    "streams_asn_latency_seconds",
    "Dispatch taken in from wms.dispatches -> shipment confirmation submitted to Amazon",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 1800, 3600, 21600),
    registry=REGISTRY,
)
PO_UNACKNOWLEDGED = Gauge(
    "streams_po_unacknowledged",
    "Purchase orders on this worker's partitions not acknowledged yet, by age since the PO "
    "date (lt_6h, 6h_18h, 18h_24h, over_24h; the last two bands start at "
    "STREAMS_ACK_WARNING_S and STREAMS_ACK_DEADLINE_S)",
    ["age"],
    registry=REGISTRY,
)
PO_UNACKNOWLEDGED_OLDEST = Gauge(
    "streams_po_unacknowledged_oldest_age_seconds",
    "Age of the oldest unacknowledged purchase order on this worker's partitions (0: none)",
    registry=REGISTRY,
)
ACK_DEADLINE_BREACHES = Counter(
    "streams_po_ack_deadline_breaches_total",
    "Purchase orders found past the acknowledgement deadline without an acknowledgement "
    "(once per PO: when its ack-deadline exception turns critical)",
    registry=REGISTRY,
)
DRIFT_SKUS = Gauge(
    "streams_inventory_drift_skus",
    "SKUs whose last published availability differs from what the master implies now by "
    "more than STREAMS_DRIFT_TOLERANCE_UNITS for longer than STREAMS_DRIFT_AFTER_S, by "
    "direction (over = Amazon was told more than is available: overselling risk)",
    ["direction"],
    registry=REGISTRY,
)
DRIFT_UNITS = Gauge(
    "streams_inventory_drift_units",
    "Sum of |published - master availability| in eaches over the drifting SKUs, by direction",
    ["direction"],
    registry=REGISTRY,
)
EXCEPTIONS_OPEN = Gauge(
    "streams_exceptions_open",
    "Open owned exceptions in the exceptions table, by kind, owner and severity (every "
    "worker holds the whole table: aggregate with max, not sum)",
    ["kind", "owner", "severity"],
    registry=REGISTRY,
)
CHANNEL_POLICY_REFRESHES = Counter(
    "streams_channel_policy_refreshes_total",
    "Reads of the warehouse policy (channel custom fields) from commercetools, by result "
    "(changed = a new policy was published to every worker, unchanged, error = the last "
    "known policy stays in effect)",
    ["result"],
    registry=REGISTRY,
)
CHANNEL_POLICY_CHANNELS = Gauge(
    "streams_channel_policy_channels",
    "Channels of the warehouse policy in effect on this worker, by Amazon eligibility "
    "(eligible, ineligible, unset = configuration decides)",
    ["state"],
    registry=REGISTRY,
)
SALES_ORDERS = Counter(
    "streams_sales_orders_total",
    "commercetools orders for acknowledged Amazon POs (finance), by outcome (created, "
    "updated, replaced, unchanged, skipped = nothing accepted or not ready, diverged = "
    "changed after fulfilment began, failed = refused by commercetools, error = a failed "
    "attempt that is retried)",
    ["outcome"],
    registry=REGISTRY,
)
INVENTORY_REQUESTS = Counter(
    "streams_amazon_inventory_requests_total",
    "submitInventoryUpdate requests by outcome (submitted = accepted by Amazon, rejected = "
    "refused (4xx, not retried), split = too large (413) and sent again in halves, error = a "
    "failed attempt that is retried, invalid = not sent: fails Amazon's model)",
    ["outcome"],
    registry=REGISTRY,
)
INVENTORY_ITEMS = Counter(
    "streams_amazon_inventory_items_total",
    "amazon.inventory-updates records handled by the inventory sender, by outcome (sent = in "
    "an accepted request, superseded = a later record of the SKU in the same batch went "
    "instead, rejected = in a refused request, invalid = not an inventory item)",
    ["outcome"],
    registry=REGISTRY,
)
INVENTORY_REQUEST_ITEMS = Histogram(
    "streams_amazon_inventory_request_items",
    "Items per accepted submitInventoryUpdate request",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
    registry=REGISTRY,
)
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


# --- Direct Fulfillment intake (DFAPI) -------------------------------------------------
DF_ORDERS_PULLED = Counter(
    "streams_df_orders_pulled_total",
    "DF orders the DF poller published to amazon.df-orders (first sight of each order), "
    "by ship-from warehouse",
    ["warehouse"],
    registry=REGISTRY,
)
DF_POLL_ERRORS = Counter(
    "streams_df_poll_errors_total",
    "DF order polls that failed (SP-API down, refused, ...); the next poll resumes from the "
    "saved cursor",
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
# --- Direct Fulfillment orders (the DF flow, agents/df_orders.py) ---
DF_ORDERS = Counter(
    "streams_df_orders_total",
    "DF orders by outcome (received, duplicate, dlq, accepted, rejected, cancelled, "
    "acknowledged, late, confirmed)",
    ["outcome"],
    registry=REGISTRY,
)
DF_OPEN = Gauge(
    "streams_df_orders_open",
    "DF orders taken in on this worker's partitions and not yet acknowledged to Amazon",
    registry=REGISTRY,
)
DF_SENDS = Counter(
    "streams_df_submissions_total",
    "DF bodies (ack, confirm, status) by outcome (submitted, duplicate, invalid, refused, "
    "unvalidated: sent without Amazon's model, STREAMS_AMAZON_MODELS_DIR unset)",
    ["kind", "outcome"],
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


def set_build_info() -> None:
    """``streams_build_info`` for this process (called once when the app is built)."""
    from importlib.metadata import PackageNotFoundError, version

    def of(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "unknown"

    from streams import __version__

    BUILD_INFO.clear()
    BUILD_INFO.labels(__version__, platform.python_version(), of("faust-streaming")).set(1)


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

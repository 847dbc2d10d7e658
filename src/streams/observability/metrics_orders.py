"""Metrics of the order flows: purchase orders and acknowledgements, ASNs, invoices, sales
orders, Direct Fulfillment orders.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from streams.observability.registry import REGISTRY

ACKS = Counter(
    "streams_acknowledgements_total",
    "Purchase-order acknowledgements by outcome "
    "(built, resent, submitted, duplicate, invalid, rejected)",
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
ASNS = Counter(
    "streams_asn_total",
    "Shipment confirmations (ASNs) by outcome (built, pending = PO not acknowledged yet, "
    "invalid, duplicate, submitted, rejected = refused by the API, accepted, failed = "
    "transaction Failure)",
    ["outcome"],
    registry=REGISTRY,
)
ASN_LATENCY = Histogram(
    "streams_asn_latency_seconds",
    "Dispatch taken in from wms.dispatches -> shipment confirmation submitted to Amazon",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 1800, 3600, 21600),
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
SALES_ORDERS = Counter(
    "streams_sales_orders_total",
    "commercetools orders for acknowledged Amazon POs (finance), by outcome (created, "
    "updated, replaced, unchanged, skipped = nothing accepted or not ready, diverged = "
    "changed after fulfilment began, failed = refused by commercetools, error = a failed "
    "attempt that is retried)",
    ["outcome"],
    registry=REGISTRY,
)
# --- Direct Fulfillment intake (DFAPI) ---
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

"""Metrics of the stock flows: deltas and their latency, storefront orders, the sweep,
commercetools commands and reconciliation, drift, warehouse policy, the inventory sender.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from streams.observability.registry import REGISTRY

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
ENTRY_DELETES = Counter(
    "streams_entry_deletes_total",
    "Deletes that name only their inventory entry, as each SKU partition took them (placed: "
    "a state there holds the entry; elsewhere: none does, another partition's may). Each "
    "such delete reaches every partition, so one known entry counts 1 placed",
    ["result"],
    registry=REGISTRY,
)
FETCHES = Counter(
    "streams_ct_entry_fetches_total",
    "Inventory entries read from commercetools for notifications without payload, by result",
    ["result"],
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

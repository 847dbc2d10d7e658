"""``create_app(settings) -> faust.App``: topics, tables, agents and web views wired."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.config import Settings
from streams.domain.ports import InventoryEntryReader
from streams.observability.metrics import REGISTRY
from streams.rebalance import StreamsApp

ALL_FLOWS = (
    "inventory",
    "ct_commands",
    "purchase_orders",
    "po_poller",
    "asn",
    "ops",
    "channel_policy",
    "sales_orders",
    "inventory_sender",
    "ct_sweep",
)


def broker_credentials(s: Settings) -> Any:
    """Faust credentials for TLS / SASL, or None for PLAINTEXT."""
    from streams.adapters.kafka_admin import ssl_context

    ctx = ssl_context(s)
    if s.kafka_security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=s.kafka_sasl_username,
            password=s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else None,
            mechanism=s.kafka_sasl_mechanism,
            ssl_context=ctx,
        )
    if ctx is not None:
        return faust.SSLCredentials(ctx)
    return None


# of Amazon's rate and burst the worker uses: network and event-loop jitter can bring two
# requests closer together at Amazon than they left, so keep clear of the limit
SPAPI_RATE_HEADROOM = 0.9


def _shared_spapi(s: Settings) -> Callable[[], Any]:
    """One SP-API client for every flow of the worker. Amazon's rate limits hold per selling
    partner and operation, and several flows call the same operation (``getTransaction``:
    the acknowledgement, ASN and inventory flows), so they must share one budget per
    operation, not keep one each; it keeps 10% and one burst token below Amazon's limits.
    Its responses are counted (``streams_spapi_responses_total``: 429s and 5xx visible on
    dashboards)."""
    client: list[Any] = []

    def get() -> Any:
        if not client:
            from streams.adapters.spapi import PATHS, SpApiClient
            from streams.observability.metrics import SpApiResponses

            rate = s.spapi_rate_per_s * SPAPI_RATE_HEADROOM
            limits = {op: (rate, max(1, s.spapi_burst - 1)) for op in PATHS}
            limits["getTransaction"] = (rate, max(1, 2 * s.spapi_burst - 1))
            client.append(SpApiClient(s, hooks=SpApiResponses(), rate_limits=limits))
        return client[0]

    return get


def create_app(
    settings: Settings,
    *,
    inventory_reader: InventoryEntryReader | None = None,
    clock: Callable[[], float] = time.time,
    flows: tuple[str, ...] = ALL_FLOWS,
    spapi_factory: Callable[[], Any] | None = None,
) -> faust.App:
    """The worker. ``flows`` names what runs; each flow registers its own agents."""
    s = settings
    spapi_factory = spapi_factory or _shared_spapi(s)
    brokers = [f"kafka://{h.strip()}" for h in s.kafka_bootstrap.split(",") if h.strip()]
    app = StreamsApp(
        s.app_id,
        broker=brokers,
        broker_credentials=broker_credentials(s),
        store="rocksdb://",
        datadir=str(s.data_dir),
        topic_partitions=s.partitions,
        topic_replication_factor=s.kafka_replication_factor,
        topic_allow_declare=True,
        value_serializer="raw",
        web_enabled=True,
        web_bind=s.web_host,
        web_port=s.web_port,
        web_host=s.web_host,
        broker_session_timeout=s.broker_session_timeout_s,
        broker_heartbeat_interval=min(3.0, s.broker_session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        # an internal topic Faust creates at start can be missing from the broker's metadata
        # when the consumer subscribes, and is then ignored until the next refresh (Faust's
        # default: 5 minutes, with an idle agent all that time on a new deployment)
        consumer_metadata_max_age_ms=5000,
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
        stream_buffer_maxsize=8192,
        table_cleanup_interval=60.0,
        logging_config=None,
    )
    # a rebalance waits for in-flight events this long at most (see streams.rebalance)
    app.wait_empty_s = max(10.0, 2 * s.broker_session_timeout_s)

    from streams.agents.inventory import InventoryFlow

    inventory = InventoryFlow(app, s, inventory_reader, clock)
    app.inventory = inventory  # type: ignore[attr-defined]

    if "ct_sweep" in flows:  # what no commercetools message announced, every 15 s
        from streams.agents.ct_sweep import SweepFlow

        sweep = SweepFlow(app, s, inventory.inventory_query, inventory.send_read, clock)
        app.ct_sweep = sweep  # type: ignore[attr-defined]

    if "purchase_orders" in flows:
        from streams.agents.purchase_orders import PurchaseOrderFlow

        po_flow = PurchaseOrderFlow(
            app, s, inventory.sku_topic, inventory.products, clock, spapi_factory
        )
        inventory.decisions_topic = po_flow.events_topic
        app.purchase_orders = po_flow  # type: ignore[attr-defined]
        if "asn" in flows:
            try:
                from streams.agents.asn import AsnFlow
            except ImportError:  # pragma: no cover - the flow arrives with the ASN issue
                pass
            else:
                app.asn = AsnFlow(app, s, po_flow, clock, spapi_factory)  # type: ignore[attr-defined]
                po_flow.shipments = app.asn.shipments  # type: ignore[attr-defined]
        if "sales_orders" in flows and s.sales_orders_enabled:
            try:
                from streams.agents.sales_orders import SalesOrderFlow
            except ImportError:  # pragma: no cover - the flow arrives with the finance issue
                pass
            else:
                app.sales_orders = SalesOrderFlow(app, s, po_flow, clock)  # type: ignore[attr-defined]
    if "purchase_orders" in flows:  # acks and ASNs keep to the worker's share of the plan
        from streams.agents.spapi_budget import RetailBudget

        app.retail_budget = RetailBudget(app, s, spapi_factory)  # type: ignore[attr-defined]
    if "po_poller" in flows:
        from streams.agents.po_poller import PoPoller

        app.po_poller = PoPoller(app, s, clock, spapi_factory)  # type: ignore[attr-defined]

    if "inventory_sender" in flows and s.inventory_sender_enabled:
        from streams.agents.inventory_sender import InventorySenderFlow

        sender = InventorySenderFlow(app, s, clock, spapi_factory)
        app.inventory_sender = sender  # type: ignore[attr-defined]

    if "ct_commands" in flows:
        try:
            from streams.agents.ct_commands import CtCommandFlow
        except ImportError:  # pragma: no cover - the flow arrives with the commercetools issue
            pass
        else:
            app.ct_commands = CtCommandFlow(app, s, inventory.sku_topic)  # type: ignore[attr-defined]

    if "channel_policy" in flows and s.channel_policy_enabled:
        try:  # the warehouse policy from commercetools channels, for the SKU agent
            from streams.agents.channel_policy import ChannelPolicyFlow
        except ImportError:  # pragma: no cover - the flow arrives with the policy issue
            pass
        else:
            app.channel_policy = ChannelPolicyFlow(app, s, inventory, clock)  # type: ignore[attr-defined]

    if "ct_commands" in flows:
        _periodic_reconcile(app, s, inventory)

    from streams.observability.lag import LagMonitor

    app.lag_monitor = LagMonitor(app, s)  # type: ignore[attr-defined]

    if "ops" in flows:
        try:  # owned exceptions table, watchers, status page and JSON API
            from streams.agents.ops import OpsFlow
        except ImportError:  # pragma: no cover - arrives with the operations issue
            pass
        else:
            app.ops = OpsFlow(app, s, clock)  # type: ignore[attr-defined]

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "rebalancing": bool(app.rebalancing)})

    return app


def _periodic_reconcile(app: faust.App, s: Settings, inventory: Any) -> None:
    """Subscriptions can stop delivering and lose notifications: every interval a slice of
    commercetools' inventory is compared with this worker's state and differences are
    re-delivered through the normal ingest (as ResourceUpdated notifications)."""
    import logging

    from streams.resync import Reconciler, worker_views

    rec = Reconciler(s)
    state_of, owns = worker_views(app, inventory.skus, inventory.sku_topic, s.partitions)

    async def publish(key: bytes, value: bytes) -> None:
        await inventory.ct_topic.send(key=key, value=value)

    @app.timer(s.reconcile_interval_s, name="reconcile")
    async def reconcile() -> None:
        if app.rebalancing:
            return
        try:
            await rec.tick(state_of, owns, publish)
        except Exception as exc:  # commercetools away: the next tick tries again
            logging.getLogger(__name__).warning("reconcile slice failed: %s", type(exc).__name__)

    app.on_before_shutdown.connect(rec.on_shutdown)

"""``create_app(settings) -> faust.App``: topics, tables, agents and web views wired."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

# every flow's module is imported here, unguarded: one that fails to import fails the start
from streams.adapters import amazon_models
from streams.agents import invoice_web
from streams.agents.asn import AsnFlow
from streams.agents.channel_policy import ChannelPolicyFlow
from streams.agents.ct_commands import CtCommandFlow
from streams.agents.ct_sweep import SweepFlow
from streams.agents.df_orders import DfOrderFlow
from streams.agents.df_poller import DfPoller
from streams.agents.inventory import InventoryFlow
from streams.agents.inventory_sender import InventorySenderFlow
from streams.agents.invoices import InvoiceFlow
from streams.agents.ops import OpsFlow
from streams.agents.po_poller import PoPoller
from streams.agents.purchase_orders import PurchaseOrderFlow
from streams.agents.sales_orders import SalesOrderFlow
from streams.agents.spapi_budget import RetailBudget
from streams.config import Settings
from streams.domain.ports import InventoryEntryReader
from streams.observability import health, web
from streams.observability.lag import LagMonitor
from streams.observability.metrics import AMAZON_UNVALIDATED, REGISTRY, set_build_info
from streams.rebalance import StreamsApp
from streams.runtime.kafka import producer_metadata
from streams.runtime.stall import StallWatch, faust_sample
from streams.runtime.tablemanager import PromptTableManager

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
    "df_poller",
    "invoices",
    "df_orders",
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


@dataclass(frozen=True)
class Flows:
    """The flows a worker runs (None: not configured to run here). Each flow registers its
    own agents and timers; what one needs of another is handed to it here, nowhere else."""

    inventory: InventoryFlow
    lag_monitor: LagMonitor
    ct_sweep: SweepFlow | None = None
    purchase_orders: PurchaseOrderFlow | None = None
    asn: AsnFlow | None = None
    sales_orders: SalesOrderFlow | None = None
    po_poller: PoPoller | None = None
    inventory_sender: InventorySenderFlow | None = None
    ct_commands: CtCommandFlow | None = None
    channel_policy: ChannelPolicyFlow | None = None
    ops: OpsFlow | None = None
    retail_budget: RetailBudget | None = None
    df_poller: DfPoller | None = None  # Direct Fulfillment orders in (STREAMS_DF_ENABLED)
    invoices: InvoiceFlow | None = None
    df_orders: DfOrderFlow | None = None


class WorkerApp(StreamsApp):
    """The worker's Faust app, with the flows it runs."""

    flows: Flows


def create_app(
    settings: Settings,
    *,
    inventory_reader: InventoryEntryReader | None = None,
    clock: Callable[[], float] = time.time,
    flows: tuple[str, ...] = ALL_FLOWS,
    spapi_factory: Callable[[], Any] | None = None,
) -> WorkerApp:
    """The worker. ``flows`` names what runs (the inventory flow always does)."""
    s = settings
    unknown = set(flows) - set(ALL_FLOWS)
    if unknown:
        raise ValueError(f"unknown flows {sorted(unknown)}; known: {', '.join(ALL_FLOWS)}")
    spapi_factory = spapi_factory or _shared_spapi(s)
    # Amazon's models not in schemas/amazon (DF, Tokens): where they are; a metric when not
    amazon_models.configure(
        s.amazon_models_dir, on_unvalidated=lambda api: AMAZON_UNVALIDATED.labels(api).inc()
    )
    brokers = [f"kafka://{h.strip()}" for h in s.kafka_bootstrap.split(",") if h.strip()]
    app = WorkerApp(
        s.app_id,
        broker=brokers,
        broker_credentials=broker_credentials(s),
        store="rocksdb://",
        datadir=str(s.data_dir),
        # every table is declared below, before the worker starts: no wait for late ones
        TableManager=PromptTableManager,
        topic_partitions=s.partitions,
        topic_replication_factor=s.kafka_replication_factor,
        topic_allow_declare=True,
        value_serializer="raw",
        web_enabled=True,
        web_bind=s.web_host,
        web_port=s.web_port,
        web_host=s.web_advertised_host or s.web_host,  # the canonical URL's host
        broker_session_timeout=s.broker_session_timeout_s,
        broker_heartbeat_interval=min(3.0, s.broker_session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        # a topic the consumer subscribed to without partitions is ignored until the next
        # refresh (Faust's default: 5 minutes, an idle agent all that time). The conductor
        # waits for new internal topics first (runtime/conductor.py); this bounds the case
        # where that wait times out
        consumer_metadata_max_age_ms=5000,
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
        stream_buffer_maxsize=8192,
        table_cleanup_interval=60.0,
        logging_config=None,
    )
    # a rebalance waits for in-flight events this long at most (see streams.rebalance)
    app.wait_empty_s = max(10.0, 2 * s.broker_session_timeout_s)

    lag_monitor = LagMonitor(app, s)
    inventory = InventoryFlow(app, s, inventory_reader, clock, lag=lag_monitor)

    sweep = None
    if "ct_sweep" in flows:  # what no commercetools message announced, every 15 s
        sweep = SweepFlow(app, s, inventory.inventory_query, inventory.send_read, clock)

    po_flow = asn = sales = invoices = None
    if "purchase_orders" in flows:
        po_flow = PurchaseOrderFlow(
            app, s, inventory.sku_topic, inventory.products, clock, spapi_factory
        )
        inventory.decisions_topic = po_flow.events_topic
        if "asn" in flows:
            asn = AsnFlow(app, s, po_flow, clock, spapi_factory)
            po_flow.shipments = asn.shipments
            if "invoices" in flows and s.invoices_enabled:  # a finance decision: off by default
                invoices = InvoiceFlow(app, s, po_flow, asn, clock, spapi_factory)
        if "sales_orders" in flows and s.sales_orders_enabled:
            sales = SalesOrderFlow(app, s, po_flow, clock)
    df_flow = None
    if "df_orders" in flows and s.df_enabled:  # Direct Fulfillment orders (issue 13)
        df_flow = DfOrderFlow(app, s, inventory.sku_topic, inventory.products, clock, spapi_factory)
        inventory.df_decisions = df_flow.decisions_record
        if asn is not None:
            asn.df_flow = df_flow  # dispatches of DF orders go to the DF flow
        if invoices is not None:  # DF invoices once Amazon accepts a DF confirmation
            df_flow.on_confirmed.append(invoices.df_shipment_confirmed)
    poller = PoPoller(app, s, clock, spapi_factory) if "po_poller" in flows else None
    # Direct Fulfillment: DF orders from getOrders to amazon.df-orders (leader only)
    df_poller = (
        DfPoller(app, s, clock, spapi_factory) if "df_poller" in flows and s.df_enabled else None
    )
    # acks and ASNs keep to the worker's share of the plan
    retail_budget = RetailBudget(app, s, spapi_factory) if "purchase_orders" in flows else None

    sender = None
    if "inventory_sender" in flows and s.inventory_sender_enabled:
        sender = InventorySenderFlow(app, s, clock, spapi_factory)

    commands = None
    if "ct_commands" in flows:
        commands = CtCommandFlow(app, s, inventory.sku_topic)

    policy = None
    if "channel_policy" in flows and s.channel_policy_enabled:
        # the warehouse policy from commercetools channels, for the SKU agent
        policy = ChannelPolicyFlow(app, s, inventory, clock)

    if "ct_commands" in flows:
        _periodic_reconcile(app, s, inventory)

    ops = None
    if "ops" in flows:  # owned exceptions table, watchers, status page and JSON API
        ops = OpsFlow(
            app,
            s,
            clock,
            skus=inventory.skus,
            products=inventory.products,
            ingest=inventory.ingest,
            policy=lambda: inventory.channel_policy(),  # set by the channel-policy flow
            pos=po_flow.pos if po_flow is not None else None,
            shipments=asn.shipments if asn is not None else None,
        )
        web.register(app, s, ops)
        if invoices is not None:  # GET /api/invoice/{number} (streams invoice)
            invoice_web.register(app, s.invoice_number_pattern, invoices.invoices, ops)

    app.flows = Flows(
        inventory=inventory,
        lag_monitor=lag_monitor,
        ct_sweep=sweep,
        purchase_orders=po_flow,
        asn=asn,
        sales_orders=sales,
        po_poller=poller,
        inventory_sender=sender,
        ct_commands=commands,
        channel_policy=policy,
        ops=ops,
        invoices=invoices,
        retail_budget=retail_budget,
        df_poller=df_poller,
        df_orders=df_flow,
    )

    @app.page("/metrics")
    async def metrics(view: Any, request: Any) -> Any:
        return view.bytes(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    # /livez, /readyz (Kafka asked over the worker's own producer connection) and /health;
    # build_info for /metrics
    probes = health.register(app, kafka_probe=lambda: producer_metadata(app))
    if s.stall_exit_s > 0:
        watch = StallWatch(
            faust_sample(app, kafka_ok=lambda: probes.kafka_error is None),
            dump_s=s.stall_exit_s / 2,
            exit_s=s.stall_exit_s,
        )

        @app.task
        async def stall_watch() -> None:  # a plain task: it must see a stuck rebalance
            await watch.run()

    set_build_info()

    return app


def _periodic_reconcile(app: faust.App, s: Settings, inventory: InventoryFlow) -> None:
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

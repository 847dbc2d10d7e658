"""Settings: every knob comes from a ``STREAMS_*`` environment variable (or a ``.env`` file).

No I/O happens at import. Secrets are ``SecretStr`` so they never print by accident; a
``*_FILE`` variant of each secret reads it from a file (Docker/Kubernetes secrets).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from streams.domain.spapi_regions import (
    LWA_TOKEN_URL,
    Region,
    amazon_host,
    endpoint_for,
    endpoint_problem,
)

LOCAL_SPAPI_CLIENT_ID = "amzn1.application-oa2-client.local"
LOCAL_SPAPI_REFRESH_TOKEN = "Atzr|local-refresh-token"

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

HOST = "127.0.0.1"


def _comma_list(value: Any) -> Any:
    if isinstance(value, str) and value.strip().startswith("["):
        import json

        return tuple(json.loads(value))
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    return value


# a tuple of strings given as a comma list (``A,B``) or a JSON list in the environment
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list)]

# Secret fields that may instead be given as a path in STREAMS_<NAME>_FILE.
SECRET_FIELDS = (
    "kafka_sasl_password",
    "ct_client_secret",
    "spapi_client_secret",
    "spapi_refresh_token",
    "web_token",
    "df_pii_key",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STREAMS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # --- Kafka -----------------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    # 3: what managed Kafka requires (Confluent Cloud refuses fewer); a single local broker
    # (streams kafka up, scripts/, the tests) sets 1
    kafka_replication_factor: int = Field(3, ge=1)
    # Partitions of every SKU- or PO-keyed topic; co-partitioning needs them equal.
    partitions: int = Field(6, ge=1, le=1024)
    # ct.messages: commercetools' Kafka destination writes one fixed key, so one
    # partition is all it will ever fill; more only helps other producers.
    ct_messages_partitions: int = Field(1, ge=1, le=1024)

    # local broker (`streams kafka up`)
    kafka_local_port: int = 9092
    kafka_local_controller_port: int = 9093
    kafka_local_dir: Path = Path(".run/kafka")
    kafka_local_heap: str = "768m"

    # --- topics (defaults are the public contract, see README) ------------------------
    topic_ct_messages: str = "ct.messages"
    topic_purchase_orders: str = "amazon.purchase-orders"
    topic_dispatches: str = "wms.dispatches"
    topic_sku_mappings: str = "master.sku-mappings"
    topic_inventory_updates: str = "amazon.inventory-updates"
    topic_po_acknowledgements: str = "amazon.po-acknowledgements"
    topic_shipment_confirmations: str = "amazon.shipment-confirmations"
    topic_inventory_commands: str = "ct.inventory-commands"
    topic_exceptions: str = "ops.exceptions"
    dlq_suffix: str = ".dlq"

    # --- worker -----------------------------------------------------------------------
    app_id: str = "vc-ct-streams"
    data_dir: Path = Path(".data")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    # deployment (deploy/kubernetes): the host others reach this worker's web server at
    # (Faust's canonical URL, which the group's assignment carries for table routing); empty =
    # web_host. A StatefulSet pod sets its stable name under the headless Service, as it binds
    # web_host 0.0.0.0
    web_advertised_host: str = ""
    web_token: SecretStr | None = Field(
        None, description="bearer token for web views beyond /metrics and health"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # OPSB: "json" = one JSON object per line (ts, level, logger, msg, sku/po/topic/offset)
    log_format: Literal["text", "json"] = "text"
    broker_session_timeout_s: float = 30.0
    # stock stage batching: events coalesced per SKU into one table write
    batch_max: int = Field(2000, ge=1)
    batch_within_s: float = Field(0.05, gt=0)
    # RocksDB, per table partition (each is its own database; see runtime/storeopts.py):
    # memory per database <= write buffer x max write buffers + block cache
    rocksdb_write_buffer_mb: int = Field(16, ge=1, le=1024)
    rocksdb_max_write_buffers: int = Field(2, ge=2, le=16)
    rocksdb_block_cache_mb: int = Field(16, ge=1, le=16384)
    # before Faust starts, read the table changelogs in bulk into the local RocksDB state
    # (streams.restore): a cold start at 1M SKUs in about a minute instead of half an hour
    bulk_restore: bool = True
    # the SKU agent's wait to fill a batch (the ingest stage already sends bundles)
    sku_batch_within_s: float = Field(0.02, gt=0)
    # ingest re-keys into bundles: one sku-events record per SKU partition per batch
    ingest_bundle_max: int = Field(500, ge=1, le=5000)

    # --- inventory rules ----------------------------------------------------------------
    debounce_window_s: float = Field(2.0, ge=0)
    debounce_max_wait_s: float = Field(10.0, ge=0)
    debounce_tick_s: float = Field(0.25, gt=0)
    # a storefront sale is published within this long however busy its SKU stays (the quiet
    # window and the max wait would let a fast-changing SKU wait up to the max wait)
    debounce_sale_wait_s: float = Field(0.5, ge=0)
    snapshot_interval_s: float = Field(3600.0, gt=0)
    # replaying a backlog (records behind > this): a SKU waits catchup_max_wait_s instead
    catchup_lag_records: int = Field(5000, ge=0)
    catchup_max_wait_s: float = Field(60.0, ge=0)
    # deltas published per second at most (Amazon's DF inventory API takes batches)
    delta_budget_per_s: int = Field(5000, ge=1)
    # used when a SKU mapping names no eligible channels / no buffer
    default_amazon_channels: tuple[str, ...] = ()
    default_safety_buffer: int = Field(0, ge=0)

    # --- commercetools ----------------------------------------------------------------
    ct_project_key: str = "demo-project"
    ct_api_url: str = "http://127.0.0.1:8989"
    ct_auth_url: str = "http://127.0.0.1:8989"
    ct_client_id: str = "local-client"
    ct_client_secret: SecretStr = SecretStr("local-secret")
    ct_scopes: str = ""
    ct_timeout_s: float = 10.0
    ct_mock_port: int = 8989

    # --- Amazon SP-API ----------------------------------------------------------------
    # endpoint and LWA URL: unset = derived (see _derive_spapi_endpoints and `streams config`):
    # without SP-API credentials the project's local sandbox, else Amazon's host of the region
    spapi_endpoint: str = ""
    spapi_lwa_url: str = ""
    spapi_region: Region = "na"
    spapi_sandbox: bool = False  # Amazon's sandbox hosts (static sandbox responses)
    spapi_client_id: str = LOCAL_SPAPI_CLIENT_ID
    spapi_client_secret: SecretStr = SecretStr("local-secret")
    spapi_refresh_token: SecretStr = SecretStr(LOCAL_SPAPI_REFRESH_TOKEN)
    # Direct Fulfillment Transaction Status API version that DF transactions are checked on
    spapi_df_transactions_version: Literal["v1", "2021-12-28"] = "v1"
    # retail vendor code: acknowledgements and ASNs name each PO's own sellingParty, this
    # only when a PO carries none
    spapi_selling_party: str = "VENDOR1"
    # Direct Fulfillment vendor code of the inventory feed (often not the retail one);
    # unset = spapi_selling_party
    spapi_df_selling_party: str | None = None
    spapi_df_warehouse: str = "WH1"
    spapi_rate_per_s: float = Field(10.0, gt=0)
    spapi_burst: int = Field(10, ge=1)
    spapi_timeout_s: float = 15.0
    # inventory sender: amazon.inventory-updates -> submitInventoryUpdate (DF partial feeds
    # for spapi_df_warehouse); items per request (Amazon's model sets no maximum, see
    # streams.domain.inventory_feed), how long records are gathered into one batch, and how
    # long a batch may keep failing before an inventory-send-stalled exception opens
    inventory_sender_enabled: bool = True
    inventory_max_items: int = Field(1000, ge=1, le=10000)
    inventory_linger_s: float = Field(1.0, gt=0)
    inventory_stalled_after_s: float = Field(300.0, ge=0)
    sandbox_port: int = 8787
    sandbox_host: str = "127.0.0.1"  # loopback unless told (e.g. inside a container)

    # --- Direct Fulfillment orders (DFAPI: the DF order poller and Amazon's DF APIs) -------
    # off by default: a retail-only vendor must not poll DF orders
    df_enabled: bool = False
    # DF warehouses (shipFromPartyId) polled, comma list; empty = spapi_df_warehouse
    df_ship_from_party_ids: CommaList = ()
    topic_df_orders: str = "amazon.df-orders"
    df_poll_interval_s: float = Field(60.0, gt=0)
    # each poll reaches back this far before the cursor (orders Amazon lists late)
    df_poll_overlap_s: float = Field(3600.0, ge=0)
    # how far back a deployment's first DF poll looks (at most Amazon's 7 days per query)
    df_initial_lookback_s: float = Field(2 * 24 * 3600.0, gt=0, le=7 * 24 * 3600.0)
    # Amazon's models not shipped in schemas/amazon (DF orders/shipping/transactions
    # 2021-12-28, Tokens): a checkout of amzn/selling-partner-api-models or a folder of its
    # files; unset = those bodies are sent without model validation (reported and counted)
    amazon_models_dir: Path | None = None

    @property
    def df_warehouses(self) -> tuple[str, ...]:
        return self.df_ship_from_party_ids or (self.spapi_df_warehouse,)

    # --- purchase orders ----------------------------------------------------------------
    po_poll_interval_s: float = Field(30.0, gt=0, description="SP-API purchase-order poll period")
    po_poll_overlap_s: float = Field(3600.0, ge=0)
    po_initial_lookback_s: float = Field(7 * 24 * 3600.0, gt=0, le=7 * 24 * 3600.0)
    po_poller_enabled: bool = True
    # ask getPurchaseOrdersStatus what Amazon received before publishing a Closed PO
    po_close_status_check: bool = True
    backorder_lead_days: int = Field(7, ge=0)
    price_tolerance: float = Field(0.01, ge=0)
    ack_deadline_s: float = Field(24 * 3600.0, gt=0)
    ack_warning_s: float = Field(18 * 3600.0, gt=0)
    tx_poll_interval_s: float = Field(5.0, gt=0)
    # Amazon: an acknowledgement still Processing after 15 minutes counts as accepted
    tx_processing_success_s: float = Field(900.0, gt=0)
    # the acknowledgements waiting when the sender is free go out in one submitAcknowledgement
    # request: at most this many, and a body of at most this many bytes (Amazon's model sets
    # no maximum count or size; it declares 413 for a body too large, which splits a request)
    ack_batch_max: int = Field(50, ge=1, le=1000)
    ack_batch_max_bytes: int = Field(2 * 1024**2, ge=64 * 1024)
    # po-events and the ack sender take together what arrives within this long (seconds)
    po_batch_within_s: float = Field(0.02, gt=0)

    # --- Direct Fulfillment orders (the DF flow: agents/df_orders.py; df_enabled and
    # topic_df_orders above) ------------------------------------------------------------
    # acknowledge-by = order date + this, but never after the order's requiredShipDate
    df_ack_within_s: float = Field(4 * 3600.0, gt=0)
    # the deadline watcher raises df-deadline this long before acknowledge-by
    df_deadline_warn_s: float = Field(3600.0, ge=0)
    df_watch_interval_s: float = Field(30.0, gt=0)
    # key of the hash that replaces the customer's address (unset: a plain SHA-256 keyed
    # with nothing; set it so hashes cannot be tested against guessed addresses)
    df_pii_key: SecretStr = SecretStr("")

    # --- commercetools commands -----------------------------------------------------------
    # custom Type (on inventory entries) whose field lists the command ids already applied
    ct_ledger_type_key: str = "streams-inventory-ledger"
    # Types (keys) inventory entries already carry, to which the worker may add its ledger
    # field (addFieldDefinition); entries of any other Type without the field are refused
    ct_ledger_host_types: tuple[str, ...] = ()
    # command ids remembered per entry: a redelivery older than this many newer commands on
    # the same entry would apply again
    ct_ledger_size: int = Field(200, ge=20, le=2000)
    # inventory entries updated at once by the command flow
    ct_command_concurrency: int = Field(16, ge=1, le=256)
    # how long a command is retried through commercetools outages before it is dead-lettered
    ct_command_retry_s: float = Field(600.0, ge=0)
    # add/removeQuantity (the net change) instead of changeQuantity computed from a read: right
    # on real projects, where order-driven stock changes reach the entry late and without a new
    # version; false only for a project that must not see relative actions
    ct_quantity_relative: bool = True
    # periodic reconciliation (commercetools vs the worker's stock state), entries per tick:
    # the drift check of last resort; 2000 per 15 s passes 1M entries in about 2 hours
    reconcile_interval_s: float = Field(15.0, gt=0)
    reconcile_batch: int = Field(2000, ge=1, le=10000)

    # --- storefront orders (order-driven stock changes; see docs/storefront-orders.md) --------
    # commercetools shows an order on the inventory entry up to ~10 s late and sends no
    # inventory message for it: a storefront order holds its stock at once, and the SKU's
    # entries are re-read this long (plus up to the jitter) after the order
    ct_order_settle_delay_s: float = Field(10.0, ge=0)
    ct_order_reread_jitter_s: float = Field(2.0, ge=0)
    # a hold no read has ended (commercetools unreachable) ends after this long
    ct_order_hold_ttl_s: float = Field(1800.0, gt=0)
    # SKUs read per commercetools query by the re-reader, and how often it looks for due ones
    ct_reread_batch: int = Field(100, ge=1, le=500)
    ct_reread_tick_s: float = Field(0.5, gt=0)
    # the changed-since sweep: inventory entries modified since the last sweep (minus the
    # overlap), read by the leader this often; changes younger than the grace are applied
    # but not judged "missed" (their notification may be on its way) and read again next time
    ct_sweep_enabled: bool = True
    ct_sweep_interval_s: float = Field(15.0, gt=0)
    ct_sweep_overlap_s: float = Field(20.0, ge=0)
    ct_sweep_grace_s: float = Field(5.0, ge=0)
    # how far back the first sweep of a new deployment looks, and the widest time window one
    # query covers (a long outage is caught up window by window)
    ct_sweep_initial_lookback_s: float = Field(120.0, ge=0)
    ct_sweep_max_window_s: float = Field(300.0, gt=0)
    # changes found only by the sweep (lost or silent notifications) within the window that
    # raise the ct-notifications-missed exception
    ct_sweep_missed_threshold: int = Field(5, ge=1)
    ct_sweep_missed_window_s: float = Field(900.0, gt=0)

    # --- shipments (ASN) ----------------------------------------------------------------
    # Amazon: SCAC and PRO/tracking are "mandatory for US, CA, MX shipment confirmations"
    asn_carrier_details_required: bool = True
    # every shipment is Collect/WePay, so Amazon requires its amazonReferenceNumber (ARN)
    asn_collect_freight: bool = False
    # write SSCCs with their GS1 Application Identifier "00" in front (20 digits)
    asn_sscc_with_ai: bool = False
    # WMS clock skew tolerated before a shippedDate counts as "in the future"
    asn_shipped_date_tolerance_s: float = Field(0.0, ge=0, le=3600)

    # --- operations -----------------------------------------------------------------------
    # watchers (ack deadlines, held lines, drift, stale syncs, dead letters) run this often
    ops_watch_interval_s: float = Field(30.0, gt=0)
    # drift: what Amazon was last told vs what the master implies now, beyond this many
    # eaches, for longer than drift_after_s (keep it above debounce_max_wait_s)
    drift_tolerance_units: int = Field(0, ge=0)
    drift_after_s: float = Field(300.0, ge=0)
    # "flow=seconds,...": a flow of streams_last_success_timestamp_seconds whose last success
    # is older raises sync-stale; flows not listed are not judged (event-driven flows may be
    # quiet for hours without anything being wrong)
    sync_stale_s: str = Field(
        "ingest=21600,inventory_publish=7200,po_poll=900",
        pattern=r"^\s*(\w+\s*=\s*\d+(\.\d+)?\s*(,\s*\w+\s*=\s*\d+(\.\d+)?\s*)*)?$",
    )
    # dead letters within this window raise dlq-growth; it resolves one window after the last
    dlq_growth_window_s: float = Field(600.0, gt=0)
    # resolved exceptions leave the table (and the compacted topic) after this long
    exceptions_retention_s: float = Field(14 * 24 * 3600.0, gt=0)
    # the status page links runbooks as this prefix + docs/runbooks/<kind>.md
    runbook_base_url: str = "https://github.com/vc-ct-streams/vc-ct-streams/blob/main/"

    # --- sales orders and warehouse policy -------------------------------------------------
    # warehouse policy: custom fields on the commercetools supply channels (Amazon
    # eligibility, priority, safety stock), read at start and this often by the leader
    channel_policy_enabled: bool = True
    channel_policy_refresh_s: float = Field(60.0, gt=0)
    # custom Type (on channels) created by the worker, holding the three policy fields
    ct_channel_policy_type_key: str = "streams-channel-policy"
    # Types (keys) supply channels already carry, to which the worker may add the policy
    # fields (addFieldDefinition)
    ct_channel_policy_host_types: tuple[str, ...] = ()
    # one commercetools order per acknowledged Amazon PO (for finance), numbered prefix + PO
    sales_orders_enabled: bool = True
    sales_order_number_prefix: str = Field("AMZ-", max_length=32, pattern=r"^[A-Za-z0-9_-]*$")
    ct_sales_order_type_key: str = "streams-amazon-order"
    ct_sales_order_line_type_key: str = "streams-amazon-order-line"
    # a new PO revision that changes the accepted lines re-imports an order nothing else has
    # acted on; false (or once fulfilment, payment or export began): finance is told instead
    sales_order_replace_on_change: bool = True
    # commercetools errors are retried without end; after this long finance is told
    sales_order_retry_s: float = Field(600.0, ge=0)

    # --- invoices (INV: vendorInvoices submitInvoices, docs/invoices.md) -----------------
    # off by default: invoicing Amazon is a finance decision
    invoices_enabled: bool = False
    topic_invoices: str = "amazon.invoices"
    # per-shipment: one invoice per accepted shipment confirmation; per-po: one per PO once
    # every accepted line shipped (or the PO is Closed)
    invoice_mode: Literal["per-shipment", "per-po"] = "per-shipment"
    # {po} and {seq} (the PO's invoice counter) are required: they make numbers unique
    invoice_number_pattern: str = Field("INV-{po}-{seq}", min_length=1, max_length=64)
    # Amazon PartyIdentification JSON; unset remit-to = the PO's selling party id
    invoice_remit_to: Annotated[dict[str, Any] | None, NoDecode] = None
    invoice_ship_from: Annotated[dict[str, Any] | None, NoDecode] = None
    invoice_tax_type: str | None = None  # TaxDetails.taxType, e.g. VAT; unset: no tax lines
    invoice_tax_rate: Decimal = Field(Decimal(0), ge=0, le=1)
    # a price other than the PO's needs an override for the line AND to be within this
    invoice_price_tolerance: Decimal = Field(Decimal(0), ge=0, le=1)
    invoice_price_overrides: Annotated[dict[str, Decimal], NoDecode] = Field(default_factory=dict)
    # --- Direct Fulfillment invoices (DFINV: vendorDirectFulfillmentPayments submitInvoice)
    # when both invoices_enabled and df_enabled; the rules and settings above apply, the
    # ship-from party is the DF order's warehouse. Bill-to: a PartyIdentification JSON (DF
    # orders name no bill-to party); unset = none on the invoice
    invoice_df_bill_to: Annotated[dict[str, Any] | None, NoDecode] = None

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        """``STREAMS_X_FILE=/path`` supplies secret ``x`` from a file when ``x`` is unset."""
        import os

        if not isinstance(data, dict):
            return data
        for name in SECRET_FIELDS:
            path = os.environ.get(f"STREAMS_{name.upper()}_FILE")
            if path and name not in data and f"STREAMS_{name.upper()}" not in os.environ:
                try:
                    data[name] = Path(path).read_text(encoding="utf-8").strip()
                except (OSError, UnicodeDecodeError) as exc:
                    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                    raise ValueError(
                        f"STREAMS_{name.upper()}_FILE={path}: cannot read it ({why})"
                    ) from None
        return data

    @model_validator(mode="after")
    def _kafka_security(self) -> Settings:
        """TLS files that exist and SASL credentials, before any client tries to use them."""
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
                path = getattr(self, name)
                if path is not None and not Path(path).is_file():
                    raise ValueError(f"{env_name(name)}={path}: no such file")
            if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
                raise ValueError(
                    "STREAMS_KAFKA_SSL_KEYFILE is set without STREAMS_KAFKA_SSL_CERTFILE"
                )
        if self.kafka_security_protocol.startswith("SASL"):
            for name in ("kafka_sasl_username", "kafka_sasl_password"):
                if not getattr(self, name):
                    raise ValueError(
                        f"{env_name(name)} is not set but STREAMS_KAFKA_SECURITY_PROTOCOL="
                        f"{self.kafka_security_protocol} needs it"
                    )
        return self

    _derived: dict[str, tuple[str, str]] = PrivateAttr(default_factory=dict)

    @field_validator(
        "invoice_remit_to",
        "invoice_ship_from",
        "invoice_tax_type",
        "invoice_df_bill_to",
        mode="before",
    )
    @classmethod
    def _invoice_unset(cls, v: Any) -> Any:
        if v == "":  # an empty variable (streams config prints one) = unset
            return None
        return json.loads(v) if isinstance(v, str) and v.lstrip().startswith("{") else v

    @field_validator("invoice_price_overrides", mode="before")
    @classmethod
    def _invoice_no_overrides(cls, v: Any) -> Any:
        if v == "":
            return {}
        return json.loads(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _invoice_number_pattern(self) -> Settings:
        pattern = self.invoice_number_pattern
        if "{po}" not in pattern or "{seq}" not in pattern:
            raise ValueError("STREAMS_INVOICE_NUMBER_PATTERN must contain {po} and {seq}")
        try:
            pattern.format(po="PO", seq=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"STREAMS_INVOICE_NUMBER_PATTERN is not a pattern: {exc}") from None
        return self

    @model_validator(mode="after")
    def _derive_spapi_endpoints(self) -> Settings:
        """Fill an unset SP-API endpoint / LWA URL and refuse one that contradicts the region.

        Endpoint: ``STREAMS_SPAPI_SANDBOX=true`` -> Amazon's sandbox host of the region; no
        SP-API credentials set (the local placeholders) -> the project's own sandbox on
        ``STREAMS_SANDBOX_HOST:STREAMS_SANDBOX_PORT``; else Amazon's production host of the
        region. LWA URL: Amazon's for an Amazon host, else ``<endpoint>/auth/o2/token``
        (where the local sandbox serves it)."""
        derived: dict[str, str] = {}
        endpoint, region = self.spapi_endpoint, self.spapi_region
        if not endpoint:
            if self.spapi_sandbox:
                endpoint = endpoint_for(region, sandbox=True)
                derived["spapi_endpoint"] = f"Amazon's {region} sandbox (STREAMS_SPAPI_SANDBOX)"
            elif self.spapi_local:
                host = self.sandbox_host if self.sandbox_host not in ("0.0.0.0", "::") else HOST
                endpoint = f"http://{host}:{self.sandbox_port}"
                derived["spapi_endpoint"] = (
                    "the local sandbox: no SP-API credentials set (`streams sandbox amazon`)"
                )
            else:
                endpoint = endpoint_for(region)
                derived["spapi_endpoint"] = f"Amazon's {region} host (STREAMS_SPAPI_REGION)"
        else:
            said = "spapi_sandbox" in self.model_fields_set
            problem = endpoint_problem(endpoint, region, self.spapi_sandbox if said else None)
            if problem:
                raise ValueError(problem)
        lwa = self.spapi_lwa_url
        if not lwa:
            if amazon_host(endpoint) is not None:
                lwa = LWA_TOKEN_URL
                derived["spapi_lwa_url"] = "Login with Amazon (every region)"
            else:
                lwa = f"{endpoint.rstrip('/')}/auth/o2/token"
                derived["spapi_lwa_url"] = "the endpoint's /auth/o2/token (the local sandbox's)"
        # frozen model: the derived values are set once, here, before anyone reads them
        object.__setattr__(self, "spapi_endpoint", endpoint)
        object.__setattr__(self, "spapi_lwa_url", lwa)
        self._derived = {name: (getattr(self, name), why) for name, why in derived.items()}
        return self

    @property
    def spapi_local(self) -> bool:
        """No SP-API credentials configured: the project's placeholders are in place."""
        return (
            self.spapi_client_id == LOCAL_SPAPI_CLIENT_ID
            and self.spapi_refresh_token.get_secret_value() == LOCAL_SPAPI_REFRESH_TOKEN
        )

    @property
    def derived(self) -> dict[str, str]:
        """Settings that were not given but derived: field name -> where the value came from."""
        # a copy with the value replaced (model_copy) no longer counts it as derived
        return {n: why for n, (v, why) in self._derived.items() if getattr(self, n) == v}

    # ---------------------------------------------------------------------------------
    def dlq_topic(self, topic: str) -> str:
        return f"{topic}{self.dlq_suffix}"

    def masked(self) -> dict[str, Any]:
        """Effective settings as plain values, secrets replaced by ``****``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "****" if value.get_secret_value() else ""
            elif value is None:
                out[name] = ""
            elif isinstance(value, Path):
                out[name] = str(value)
            elif isinstance(value, tuple):
                out[name] = ",".join(value)
            elif isinstance(value, dict):  # JSON, as the variable is read
                out[name] = json.dumps(value, default=str)
            else:
                out[name] = value
        return out


def env_name(field: str) -> str:
    return f"STREAMS_{field.upper()}"


class ConfigError(ValueError):
    """A setting that cannot work; the message names its ``STREAMS_*`` variable, in one line.

    Commands raise it for problems found after the settings loaded (e.g. a replication factor
    the cluster cannot give); ``streams`` prints it without a traceback and exits 2."""


def load_settings(**values: Any) -> Settings:
    """``Settings(**values)``, every way of failing turned into one :class:`ConfigError`."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(config_error(exc)) from None
    except SettingsError as exc:  # a list setting whose value is not JSON
        raise ConfigError(config_error(exc)) from None


def config_error(exc: Exception) -> str:
    """One line per problem of a settings ``ValidationError``, named by environment variable."""
    import re

    errors = getattr(exc, "errors", None)
    if not callable(errors):
        found = re.search(r'error parsing value for field "(\w+)"', str(exc))
        if found:  # pydantic-settings: a list setting whose value is not JSON
            return f'{env_name(found[1])}: not a JSON list (e.g. ["a","b"]; [] for none)'
        return " ".join(str(exc).split())
    lines = []
    for e in errors():
        where = ".".join(str(p) for p in e.get("loc", ()))
        message = str(e.get("msg", "")).removeprefix("Value error, ")
        lines.append(f"{env_name(where)}: {message}" if where else message)
    return " ".join("; ".join(lines).split())  # one line, whatever a message holds

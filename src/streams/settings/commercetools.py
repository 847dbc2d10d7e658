"""commercetools settings: the API client, the command flow, storefront orders, sales orders."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class CtSettings(BaseModel):
    # --- commercetools ----------------------------------------------------------------
    ct_project_key: str = "demo-project"
    ct_api_url: str = "http://127.0.0.1:8989"
    ct_auth_url: str = "http://127.0.0.1:8989"
    ct_client_id: str = "local-client"
    ct_client_secret: SecretStr = SecretStr("local-secret")
    ct_scopes: str = ""
    ct_timeout_s: float = 10.0
    ct_mock_port: int = 8989


class CtCommandSettings(BaseModel):
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


class StorefrontOrderSettings(BaseModel):
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


class SalesOrderSettings(BaseModel):
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

"""Amazon settings: the SP-API client and its endpoints, DF and retail purchase orders, ASNs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, model_validator

from streams.domain.spapi_regions import (
    LWA_TOKEN_URL,
    Region,
    amazon_host,
    endpoint_for,
    endpoint_problem,
)
from streams.settings.support import CommaList

LOCAL_SPAPI_CLIENT_ID = "amzn1.application-oa2-client.local"
LOCAL_SPAPI_REFRESH_TOKEN = "Atzr|local-refresh-token"

HOST = "127.0.0.1"


class SpapiSettings(BaseModel):
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

    _derived: dict[str, tuple[str, str]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _derive_spapi_endpoints(self) -> Self:
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


class DfPollSettings(BaseModel):
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


class PurchaseOrderSettings(BaseModel):
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


class DfFlowSettings(BaseModel):
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


class AsnSettings(BaseModel):
    # --- shipments (ASN) ----------------------------------------------------------------
    # Amazon: SCAC and PRO/tracking are "mandatory for US, CA, MX shipment confirmations"
    asn_carrier_details_required: bool = True
    # every shipment is Collect/WePay, so Amazon requires its amazonReferenceNumber (ARN)
    asn_collect_freight: bool = False
    # write SSCCs with their GS1 Application Identifier "00" in front (20 digits)
    asn_sscc_with_ai: bool = False
    # WMS clock skew tolerated before a shippedDate counts as "in the future"
    asn_shipped_date_tolerance_s: float = Field(0.0, ge=0, le=3600)

"""Invoice settings (vendorInvoices submitInvoices, docs/invoices.md)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import NoDecode


class InvoiceSettings(BaseModel):
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
    # --- Direct Fulfillment invoices (vendorDirectFulfillmentPayments submitInvoice) when
    # both invoices_enabled and df_enabled; the rules and settings above apply, the ship-from
    # party is the DF order's warehouse. Bill-to: a PartyIdentification JSON (DF orders name
    # no bill-to party); unset = none on the invoice
    invoice_df_bill_to: Annotated[dict[str, Any] | None, NoDecode] = None

    @field_validator(
        "invoice_remit_to", "invoice_ship_from", "invoice_tax_type", "invoice_df_bill_to",
        mode="before",
    )  # fmt: skip
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
    def _invoice_number_pattern(self) -> Self:
        pattern = self.invoice_number_pattern
        if "{po}" not in pattern or "{seq}" not in pattern:
            raise ValueError("STREAMS_INVOICE_NUMBER_PATTERN must contain {po} and {seq}")
        try:
            pattern.format(po="PO", seq=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"STREAMS_INVOICE_NUMBER_PATTERN is not a pattern: {exc}") from None
        return self

"""Master data for one SKU: the value of ``master.sku-mappings`` (key: commercetools SKU)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streams.domain.contract_types import (
    BeforeValidator,
    JsonBool,
    JsonInt,
    JsonStr,
    StrictInt,
    decimal_schema,
    decimal_text,
    integral,
)

# Strict field types (contract_types): schemas/master.sku-mappings.schema.json is generated
# from this model (streams.schemas_gen), so what one refuses the other refuses.
_AMOUNT = r"^(0|[1-9]\d*)(\.\d+)?$"
# constraints before the validator: in a union the generated schema would lose them otherwise
CaseSize = Annotated[StrictInt, Field(ge=1, le=100_000), BeforeValidator(integral)]
Amount = Annotated[Decimal, BeforeValidator(decimal_text(_AMOUNT)), decimal_schema(_AMOUNT)]


class Money(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Amount
    currencyCode: JsonStr = Field(min_length=3, max_length=3)


class SkuMapping(BaseModel):
    """SKU <-> Amazon identifiers, case size, channel eligibility, buffer, obsolete flag.

    ``amazonChannels`` names the commercetools supply channels (ids or keys) whose stock may
    serve Amazon; empty means the configured default, and when that is empty too, every
    channel. ``unitsPerCase`` is the case size used when a PO line omits ``unitSize``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    sku: JsonStr = Field(min_length=1, max_length=256)
    asin: JsonStr | None = Field(None, min_length=10, max_length=10)
    vendorProductIdentifier: JsonStr | None = Field(None, min_length=1, max_length=64)
    unitsPerCase: CaseSize | None = None
    amazonUnitOfMeasure: Literal["Cases", "Eaches"] = "Eaches"
    amazonChannels: tuple[JsonStr, ...] = ()
    safetyBuffer: JsonInt = Field(0, ge=0, le=10**9)
    obsolete: JsonBool = False
    netCost: Money | None = None

    @field_validator("amazonChannels", mode="before")
    @classmethod
    def _channels(cls, v: object) -> object:
        # an array, nothing else (lax mode would also take a set or a dict's keys)
        if isinstance(v, list):
            return tuple(v)
        if not isinstance(v, tuple):
            raise ValueError("amazonChannels must be an array of strings")
        return v

    def eligible(self, channel: str, channel_key: str | None, default: tuple[str, ...]) -> bool:
        allowed = self.amazonChannels or default
        if not allowed:
            return True
        return channel in allowed or (channel_key is not None and channel_key in allowed)

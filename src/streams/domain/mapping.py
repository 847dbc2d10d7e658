"""Master data for one SKU: the value of ``master.sku-mappings`` (key: commercetools SKU)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Money(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Decimal = Field(ge=0)
    currencyCode: str = Field(min_length=3, max_length=3)


class SkuMapping(BaseModel):
    """SKU <-> Amazon identifiers, case size, channel eligibility, buffer, obsolete flag.

    ``amazonChannels`` names the commercetools supply channels (ids or keys) whose stock may
    serve Amazon; empty means the configured default, and when that is empty too, every
    channel. ``unitsPerCase`` is the case size used when a PO line omits ``unitSize``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    sku: str = Field(min_length=1, max_length=256)
    asin: str | None = Field(None, min_length=10, max_length=10)
    vendorProductIdentifier: str | None = Field(None, min_length=1, max_length=64)
    unitsPerCase: int | None = Field(None, ge=1, le=100_000)
    amazonUnitOfMeasure: Literal["Cases", "Eaches"] = "Eaches"
    amazonChannels: tuple[str, ...] = ()
    safetyBuffer: int = Field(0, ge=0, le=10**9)
    obsolete: bool = False
    netCost: Money | None = None

    @field_validator("amazonChannels", mode="before")
    @classmethod
    def _channels(cls, v: object) -> object:
        return tuple(v) if isinstance(v, list) else v

    def eligible(self, channel: str, channel_key: str | None, default: tuple[str, ...]) -> bool:
        allowed = self.amazonChannels or default
        if not allowed:
            return True
        return channel in allowed or (channel_key is not None and channel_key in allowed)

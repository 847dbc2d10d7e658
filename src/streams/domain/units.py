"""Amazon ordering units (Cases x unitSize, or Eaches) <-> commercetools eaches.

Amazon orders in ``Cases`` or ``Eaches``; commercetools counts eaches. A case size is taken
from the PO line's ``unitSize`` or, when Amazon leaves it out, from the SKU's master-data
``unitsPerCase``. Whenever the size is unknown or the two sources disagree the answer is a
:class:`Hold` with a reason an operator can act on: a guessed case size would allocate (and
promise) the wrong number of units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictInt, field_validator

UnitOfMeasure = Literal["Cases", "Eaches"]


class ItemQuantity(BaseModel):
    """SP-API ``ItemQuantity`` (vendorOrders.json): every field is optional in Amazon's model."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    amount: StrictInt
    unitOfMeasure: UnitOfMeasure | None = None
    unitSize: StrictInt | None = None

    @field_validator("unitOfMeasure", mode="before")
    @classmethod
    def _canonical_unit(cls, v: object) -> object:
        # Amazon's own sandbox example sends "CASES"; the enum is "Cases"/"Eaches".
        if isinstance(v, str):
            for unit in ("Cases", "Eaches"):
                if v.casefold() == unit.casefold():
                    return unit
        return v


@dataclass(frozen=True)
class Eaches:
    """A successful conversion: ``eaches`` in total, ``unit_size`` eaches per ordering unit."""

    eaches: int
    unit_size: int


@dataclass(frozen=True)
class Hold:
    """No safe conversion; ``reason`` says exactly what is missing or contradictory."""

    reason: str


def to_eaches(
    qty: ItemQuantity, units_per_case: int | None, *, context: str, sku: str | None = None
) -> Eaches | Hold:
    """Convert an Amazon quantity to eaches; ``context`` (e.g. "PO X line 2") prefixes reasons."""
    sku_ref = f"SKU {sku}" if sku else "the unmapped product"
    if qty.amount <= 0:
        return Hold(f"{context}: ordered quantity {qty.amount} is not positive")
    if qty.unitOfMeasure is None:
        return Hold(f"{context}: orderedQuantity has no unitOfMeasure")
    if qty.unitOfMeasure == "Eaches":
        return Eaches(qty.amount, 1)
    if qty.unitSize is not None and qty.unitSize <= 0:
        return Hold(f"{context}: ordered in Cases with invalid unitSize {qty.unitSize}")
    if qty.unitSize is None and units_per_case is None:
        return Hold(
            f"{context}: ordered in Cases but no unitSize and no unitsPerCase for {sku_ref}"
        )
    if qty.unitSize is not None and units_per_case is not None and qty.unitSize != units_per_case:
        return Hold(
            f"{context}: ordered in Cases of {qty.unitSize} but {sku_ref} "
            f"has unitsPerCase {units_per_case}"
        )
    size = qty.unitSize if qty.unitSize is not None else units_per_case
    assert size is not None and size > 0  # guaranteed by the checks above / SkuMapping
    return Eaches(qty.amount * size, size)


def to_units(eaches: int, unit_size: int) -> int:
    """Whole ordering units covered by ``eaches``, rounded DOWN: never promise more than we hold."""
    if unit_size <= 0:
        raise ValueError(f"unit size must be positive, got {unit_size}")
    return max(0, eaches) // unit_size

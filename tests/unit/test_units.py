"""Amazon units <-> eaches: exact when determined, a Hold whenever the case size is ambiguous."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from streams.domain.units import Eaches, Hold, ItemQuantity, to_eaches, to_units

CTX = "PO X line 2"


def cases(amount: int, unit_size: int | None = None) -> ItemQuantity:
    return ItemQuantity(amount=amount, unitOfMeasure="Cases", unitSize=unit_size)


def test_eaches_are_the_amount() -> None:
    qty = ItemQuantity(amount=7, unitOfMeasure="Eaches", unitSize=1)
    assert to_eaches(qty, 12, context=CTX) == Eaches(7, 1)


def test_cases_times_unit_size() -> None:
    assert to_eaches(cases(3, 12), None, context=CTX) == Eaches(36, 12)


def test_cases_fall_back_to_units_per_case() -> None:
    assert to_eaches(cases(3), 6, context=CTX, sku="SKU-1") == Eaches(18, 6)


def test_cases_with_agreeing_sizes() -> None:
    assert to_eaches(cases(2, 6), 6, context=CTX, sku="SKU-1") == Eaches(12, 6)


def test_cases_without_any_size_hold_with_precise_reason() -> None:
    result = to_eaches(cases(3), None, context=CTX, sku="Y")
    assert result == Hold(
        "PO X line 2: ordered in Cases but no unitSize and no unitsPerCase for SKU Y"
    )


def test_cases_with_disagreeing_sizes_hold() -> None:
    result = to_eaches(cases(3, 12), 6, context=CTX, sku="Y")
    assert isinstance(result, Hold)
    assert result.reason == "PO X line 2: ordered in Cases of 12 but SKU Y has unitsPerCase 6"


@pytest.mark.parametrize("amount", [0, -1, -12])
def test_non_positive_amounts_hold(amount: int) -> None:
    result = to_eaches(ItemQuantity(amount=amount, unitOfMeasure="Eaches"), None, context=CTX)
    assert isinstance(result, Hold)
    assert "not positive" in result.reason


@pytest.mark.parametrize("size", [0, -6])
def test_invalid_unit_size_holds(size: int) -> None:
    result = to_eaches(cases(1, size), 6, context=CTX)
    assert isinstance(result, Hold) and "invalid unitSize" in result.reason


def test_missing_unit_of_measure_holds() -> None:
    result = to_eaches(ItemQuantity(amount=3), 6, context=CTX)
    assert isinstance(result, Hold) and "no unitOfMeasure" in result.reason


def test_unit_of_measure_is_case_insensitive() -> None:
    # Amazon's own sandbox PO 3TRD2IAB says "CASES".
    assert (
        ItemQuantity.model_validate({"amount": 5, "unitOfMeasure": "CASES"}).unitOfMeasure
        == "Cases"
    )
    with pytest.raises(ValidationError):
        ItemQuantity.model_validate({"amount": 5, "unitOfMeasure": "Pallets"})
    with pytest.raises(ValidationError):
        ItemQuantity.model_validate({"amount": "5", "unitOfMeasure": "Eaches"})


def test_to_units_rounds_down() -> None:
    assert to_units(30, 12) == 2
    assert to_units(24, 12) == 2
    assert to_units(11, 12) == 0
    assert to_units(-5, 12) == 0
    assert to_units(7, 1) == 7
    with pytest.raises(ValueError):
        to_units(10, 0)


sizes = st.integers(min_value=1, max_value=1000)


@given(units=st.integers(min_value=1, max_value=10_000), size=sizes)
def test_round_trip_cases(units: int, size: int) -> None:
    result = to_eaches(cases(units, size), None, context=CTX)
    assert result == Eaches(units * size, size)
    assert to_units(result.eaches, size) == units


@given(eaches=st.integers(min_value=-100, max_value=1_000_000), size=sizes)
def test_to_units_never_over_promises(eaches: int, size: int) -> None:
    units = to_units(eaches, size)
    assert units >= 0
    assert units * size <= max(0, eaches)  # never more eaches than we hold
    assert (units + 1) * size > eaches  # and no whole unit left unused


@given(
    amount=st.integers(min_value=-5, max_value=500),
    unit=st.sampled_from(["Cases", "Eaches", None]),
    unit_size=st.one_of(st.none(), st.integers(min_value=-2, max_value=50)),
    units_per_case=st.one_of(st.none(), st.integers(min_value=1, max_value=50)),
)
def test_hold_exactly_when_ambiguous(
    amount: int, unit: str | None, unit_size: int | None, units_per_case: int | None
) -> None:
    qty = ItemQuantity.model_validate(
        {"amount": amount, "unitOfMeasure": unit, "unitSize": unit_size}
    )
    result = to_eaches(qty, units_per_case, context=CTX, sku="S")
    if amount <= 0 or unit is None:
        determined = None
    elif unit == "Eaches":
        determined = 1
    elif unit_size is not None:
        ok = unit_size > 0 and units_per_case in (None, unit_size)
        determined = unit_size if ok else None
    else:
        determined = units_per_case
    if determined is None:
        assert isinstance(result, Hold) and result.reason.startswith(CTX + ": ")
    else:
        assert result == Eaches(amount * determined, determined)

"""validate_shipment_confirmation: one rule at a time, each with a passing and a failing case.

The baseline is an LTL shipment of PO PO100001: item 001 (MUG, Cases of 12, 4 accepted) and
item 002 (TEA, Eaches, 30 accepted); line 3 (KETTLE) was rejected. Cartons 001 and 002 sit
on pallet 1, carton 003 travels loose.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast

import pytest

from streams.adapters import amazon_models
from streams.domain.asn import (
    AckLine,
    AsnContext,
    Code,
    Party,
    PoState,
    UsedShipment,
    Violation,
    build_shipment_confirmation,
    looks_like_date,
    validate_shipment_confirmation,
)
from streams.domain.dispatch import Dispatch
from streams.domain.gs1 import with_check_digit

NOW = datetime(2024, 3, 13, 12, 0, tzinfo=UTC)
A, B, C, P = (with_check_digit(f"0061414110000000{n}") for n in (1, 2, 3, 9))
PO = PoState(
    purchaseOrderNumber="PO100001",
    sellingParty=Party(partyId="VNDR1"),
    shipToParty=Party(partyId="RNO4"),
    lines=(
        AckLine(
            itemSequenceNumber="1",
            sku="MUG",
            asin="B0MUG00001",
            vendorProductIdentifier="V-MUG",
            acceptedQuantity=4,
            unitOfMeasure="Cases",
            unitSize=12,
        ),
        AckLine(
            itemSequenceNumber="2",
            sku="TEA",
            asin="B0TEA00001",
            vendorProductIdentifier="V-TEA",
            acceptedQuantity=30,
            unitOfMeasure="Eaches",
        ),
        AckLine(
            itemSequenceNumber="3",
            sku="KETTLE",
            acceptedQuantity=0,
            unitOfMeasure="Cases",
            unitSize=4,
        ),
    ),
)


def dispatch_doc() -> dict[str, Any]:
    return {
        "dispatchId": "D-1",
        "shipmentId": "SHIP-1",
        "purchaseOrderNumber": "PO100001",
        "shipFromWarehouse": "wh-1",
        "shippedDate": "2024-03-13T10:00:00Z",
        "estimatedDeliveryDate": "2024-03-15T10:00:00Z",
        "shipmentType": "LessThanTruckLoad",
        "carrierScac": "ODFL",
        "proNumber": "0781234",
        "billOfLading": "BOL-778123",
        "cartons": [
            {"sscc": A, "items": [{"sku": "MUG", "quantityEaches": 12}]},
            {
                "sscc": B,
                "items": [
                    {"sku": "MUG", "quantityEaches": 12},
                    {"sku": "TEA", "quantityEaches": 6},
                ],
            },
            {"sscc": C, "items": [{"sku": "TEA", "quantityEaches": 10}]},
        ],
        "pallets": [{"sscc": P, "cartons": [A, B]}],
    }


def build(change: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any]:
    doc = dispatch_doc()
    if change:
        change(doc)
    return build_shipment_confirmation(Dispatch.model_validate(doc), PO, {}, NOW)


BASE = build()


def asn_with(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    asn = copy.deepcopy(BASE)
    change(asn)
    return asn


def check(asn: dict[str, Any], **kw: Any) -> list[Violation]:
    model_check = partial(amazon_models.validate, "vendorShipments", "ShipmentConfirmation")
    return validate_shipment_confirmation(
        asn, AsnContext(now=NOW, po=PO, model_check=model_check, **kw)
    )


def found(asn: dict[str, Any], **kw: Any) -> list[tuple[Code, str]]:
    return [(v.code, v.field) for v in check(asn, **kw)]


def only(asn: dict[str, Any], **kw: Any) -> Violation:
    violations = check(asn, **kw)
    assert len(violations) == 1, violations
    return violations[0]


def test_the_baseline_is_clean() -> None:
    assert BASE["shipmentStructure"] == "PalletizedAssortmentCase"
    assert check(BASE) == []


# ---------------------------------------------------------------- Amazon's model


def test_amazon_model_errors_keep_their_path() -> None:
    v = only(asn_with(lambda a: a.pop("shipToParty")))
    assert (v.code, v.field, v.message) == (
        Code.AMAZON_MODEL,
        "(root)",
        "'shipToParty' is a required property",
    )
    v = only(asn_with(lambda a: a.update(shipmentType="Truck")))
    assert (v.code, v.field) == (Code.AMAZON_MODEL, "shipmentType")
    assert "'Truck' is not one of" in v.message


def test_malformed_values_do_not_break_the_business_checks() -> None:
    def breaks(a: dict[str, Any]) -> None:
        a["shippedItems"][0]["shippedQuantity"]["amount"] = "2"

    assert (Code.AMAZON_MODEL, "shippedItems/0/shippedQuantity/amount") in found(asn_with(breaks))
    for garbage in (
        {},
        {"shippedItems": "x", "cartons": [1, None], "transportationDetails": []},
        {
            "shippedItems": [{"itemSequenceNumber": 5}, None],
            "pallets": [{"cartonReferenceDetails": 5}],
        },
        {
            "cartons": [
                {"cartonIdentifiers": [{"containerIdentificationType": "SSCC"}], "items": [{}]}
            ]
        },
    ):
        assert check(garbage)  # reports, never raises
    assert check(cast(dict[str, Any], [])) != []


def test_a_carton_reference_that_is_no_string_is_reported_not_raised() -> None:
    # a list or object where a cartonSequenceNumber belongs used to raise TypeError (unhashable)
    def refs(a: dict[str, Any]) -> None:
        a["pallets"][0]["cartonReferenceDetails"]["cartonReferenceNumbers"] = [["001"], {"n": 2}]

    got = found(asn_with(refs))
    ref = "pallets/0/cartonReferenceDetails/cartonReferenceNumbers"
    assert (Code.UNKNOWN_CARTON_REFERENCE, f"{ref}/0") in got
    assert (Code.UNKNOWN_CARTON_REFERENCE, f"{ref}/1") in got


# ---------------------------------------------------------------- SSCC


def test_sscc_check_digit_names_the_carton() -> None:
    bad = B[:-1] + str((int(B[-1]) + 1) % 10)
    v = only(
        asn_with(
            lambda a: a["cartons"][1]["cartonIdentifiers"][0].update(
                containerIdentificationNumber=bad
            )
        )
    )
    assert v.code == Code.INVALID_SSCC
    assert v.field == "cartons/1/cartonIdentifiers/0/containerIdentificationNumber"
    assert v.message == f"carton 002 (SSCC {bad}): SSCC check digit is {bad[-1]}, expected {B[-1]}"


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        ("1234", "has 4 characters"),
        ("10614141123456789", "has 17 characters"),
        ("10614141123456789X", "contains 'X'"),
        ("106141411234567890", "check digit is 0, expected 7"),
    ],
)
def test_invalid_pallet_sscc(number: str, problem: str) -> None:
    v = only(
        asn_with(
            lambda a: a["pallets"][0]["palletIdentifiers"][0].update(
                containerIdentificationNumber=number
            )
        )
    )
    assert (v.code, v.field) == (
        Code.INVALID_SSCC,
        "pallets/0/palletIdentifiers/0/containerIdentificationNumber",
    )
    assert v.message.startswith(f"pallet 1 (SSCC {number}): SSCC {problem}")


@pytest.mark.parametrize("number", ["00" + A, "(00)" + A])
def test_sscc_with_application_identifier_is_accepted(number: str) -> None:
    assert (
        check(
            asn_with(
                lambda a: a["cartons"][0]["cartonIdentifiers"][0].update(
                    containerIdentificationNumber=number
                )
            )
        )
        == []
    )


def test_other_container_id_types_are_not_ssccs() -> None:
    ident = {"containerIdentificationType": "AMZNCC", "containerIdentificationNumber": "AZ12"}
    assert check(asn_with(lambda a: a["cartons"][0].update(cartonIdentifiers=[ident]))) == []


def test_container_without_identifier() -> None:
    assert found(asn_with(lambda a: a["cartons"][2].update(cartonIdentifiers=[]))) == [
        (Code.MISSING_CONTAINER_ID, "cartons/2/cartonIdentifiers")
    ]


def test_duplicate_sscc() -> None:
    v = only(build(lambda d: d["pallets"][0].update(sscc=C)))
    assert (v.code, v.field) == (
        Code.DUPLICATE_SSCC,
        "pallets/0/palletIdentifiers/0/containerIdentificationNumber",
    )
    assert v.message == f"pallet 1 (SSCC {C}) repeats SSCC {C} of carton 003 (SSCC {C})"


def test_two_cartons_with_one_sscc() -> None:
    v = only(build(lambda d: d["cartons"][2].update(sscc=A)))
    assert (v.code, v.field) == (
        Code.DUPLICATE_SSCC,
        "cartons/2/cartonIdentifiers/0/containerIdentificationNumber",
    )
    assert v.message == f"carton 003 (SSCC {A}) repeats SSCC {A} of carton 001 (SSCC {A})"


def test_sscc_reused_by_another_shipment() -> None:
    assert check(BASE, used_ssccs={A: "SHIP-1"}) == []  # this shipment's own SSCC (resend)
    v = only(BASE, used_ssccs={A: "SHIP-0"})
    assert (v.code, v.field) == (
        Code.SSCC_REUSED,
        "cartons/0/cartonIdentifiers/0/containerIdentificationNumber",
    )
    assert "already used by shipment 'SHIP-0'" in v.message


# ---------------------------------------------------------------- carrier


@pytest.mark.parametrize("scac", ["UP", "UPS", "ODFL"])
def test_valid_scac(scac: str) -> None:
    assert check(asn_with(lambda a: a["transportationDetails"].update(carrierScac=scac))) == []


@pytest.mark.parametrize("scac", ["U", "UPSNX", "UPSN - UNITED PARCEL SERVICE INC", "OD1L", "odfl"])
def test_invalid_scac(scac: str) -> None:
    v = only(asn_with(lambda a: a["transportationDetails"].update(carrierScac=scac)))
    assert (v.code, v.field) == (Code.INVALID_SCAC, "transportationDetails/carrierScac")
    assert v.message == f"carrierScac {scac!r} is not a SCAC (2 to 4 capital letters)"


def test_missing_scac_matters_only_where_mandatory() -> None:
    asn = build(lambda d: d.pop("carrierScac"))
    assert found(asn) == [(Code.MISSING_SCAC, "transportationDetails/carrierScac")]
    assert check(asn, carrier_details_required=False) == []


@pytest.mark.parametrize("kind", ["LessThanTruckLoad", "TruckLoad"])
def test_freight_needs_a_pro_number(kind: str) -> None:
    asn = build(lambda d: d.update(shipmentType=kind, proNumber=None))
    v = only(asn, carrier_details_required=False)
    assert (v.code, v.field) == (
        Code.MISSING_CARRIER_REFERENCE,
        "transportationDetails/carrierShipmentReferenceNumber",
    )
    assert v.message == f"a {kind} shipment needs the carrier's PRO number"


def _small_parcel(d: dict[str, Any]) -> None:
    d.update(shipmentType="SmallParcel", proNumber=None, billOfLading=None)
    d.pop("pallets")
    for i, carton in enumerate(d["cartons"]):
        carton["trackingNumber"] = f"1Z999AA1012345678{i}"


def test_small_parcel_needs_a_tracking_number_per_carton() -> None:
    assert check(build(_small_parcel)) == []

    def one_untracked(d: dict[str, Any]) -> None:
        _small_parcel(d)
        del d["cartons"][2]["trackingNumber"]

    v = only(build(one_untracked))
    assert (v.code, v.field) == (Code.MISSING_TRACKING_NUMBER, "cartons/2/trackingNumber")
    assert v.message == (
        f"carton 003 (SSCC {C}) has no trackingNumber, required for every carton of a "
        "SmallParcel shipment"
    )
    # LTL cartons need none (the baseline has none)
    assert all("trackingNumber" not in c for c in BASE["cartons"])


def test_small_parcel_without_cartons() -> None:
    def pallets_only(d: dict[str, Any]) -> None:
        d.update(shipmentType="SmallParcel", billOfLading=None, cartons=[])
        d["pallets"] = [{"sscc": P, "items": [{"sku": "TEA", "quantityEaches": 5}]}]

    assert (Code.MISSING_TRACKING_NUMBER, "cartons") in found(build(pallets_only))


def test_small_parcel_carrier_reference_only_where_mandatory() -> None:
    def untracked(d: dict[str, Any]) -> None:
        _small_parcel(d)
        for carton in d["cartons"]:
            del carton["trackingNumber"]

    asn = build(untracked)
    assert (
        Code.MISSING_CARRIER_REFERENCE,
        "transportationDetails/carrierShipmentReferenceNumber",
    ) in found(asn)
    assert Code.MISSING_CARRIER_REFERENCE not in {
        v.code for v in check(asn, carrier_details_required=False)
    }


# ---------------------------------------------------------------- bill of lading


@pytest.mark.parametrize("kind", ["LessThanTruckLoad", "TruckLoad"])
def test_freight_needs_a_bill_of_lading(kind: str) -> None:
    v = only(build(lambda d: d.update(shipmentType=kind, billOfLading=None)))
    assert (v.code, v.field) == (
        Code.MISSING_BILL_OF_LADING,
        "transportationDetails/billOfLadingNumber",
    )
    assert v.message == f"billOfLadingNumber is missing, mandatory for a {kind} shipment"


def test_small_parcel_needs_no_bill_of_lading() -> None:
    assert "billOfLadingNumber" not in build(_small_parcel)["transportationDetails"]


@pytest.mark.parametrize(
    "bol",
    [
        "2024-03-11",
        "2024-03-11T10:00:00Z",
        "2024-03-11 10:00",
        "20240311",
        "03/11/2024",
        "11.03.2024",
        "3/11/24",
    ],
)
def test_bill_of_lading_is_not_a_date(bol: str) -> None:
    assert looks_like_date(bol)
    v = only(asn_with(lambda a: a["transportationDetails"].update(billOfLadingNumber=bol)))
    assert (v.code, v.message) == (
        Code.INVALID_BILL_OF_LADING,
        f"billOfLadingNumber {bol!r} is a date/time, not a BOL number",
    )


@pytest.mark.parametrize("bol", ["BOL-778123", "02440000", "12345678", "778123", "AB"])
def test_bill_of_lading_numbers_that_are_not_dates(bol: str) -> None:
    assert not looks_like_date(bol)
    assert (
        check(asn_with(lambda a: a["transportationDetails"].update(billOfLadingNumber=bol))) == []
    )


def test_bill_of_lading_is_not_a_single_character() -> None:
    v = only(asn_with(lambda a: a["transportationDetails"].update(billOfLadingNumber="7")))
    assert (v.code, v.message) == (
        Code.INVALID_BILL_OF_LADING,
        "billOfLadingNumber '7' is a single character",
    )


def test_bill_of_lading_is_unique_per_shipment() -> None:
    assert check(BASE, used_bills_of_lading={"BOL-778123": "SHIP-1"}) == []  # its own
    v = only(BASE, used_bills_of_lading={"BOL-778123": "SHIP-0"})
    assert (v.code, v.field) == (
        Code.BILL_OF_LADING_REUSED,
        "transportationDetails/billOfLadingNumber",
    )
    assert v.message == (
        "billOfLadingNumber 'BOL-778123' was already used by shipment 'SHIP-0'; "
        "it must be unique for every shipment"
    )


def test_collect_shipment_needs_an_amazon_reference_number() -> None:
    v = only(BASE, collect_freight=True)
    assert (v.code, v.field) == (Code.MISSING_AMAZON_REFERENCE_NUMBER, "amazonReferenceNumber")
    asn = build(lambda d: d.update(amazonReferenceNumber="ARN1637144422999"))
    assert check(asn, collect_freight=True) == []


# ---------------------------------------------------------------- quantities


def test_shipping_more_than_acknowledged() -> None:
    asn = build(lambda d: d["cartons"][0]["items"][0].update(quantityEaches=48))  # 4 + 1 cases
    v = only(asn)
    assert (v.code, v.field) == (
        Code.QUANTITY_EXCEEDS_ACKNOWLEDGED,
        "shippedItems/0/shippedQuantity",
    )
    assert v.message == (
        "item 001 (SKU MUG) ships 60 eaches (5 Cases of 12) but only 48 eaches (4 Cases of 12) "
        "were acknowledged"
    )


def test_earlier_shipments_count_against_the_acknowledgement() -> None:
    assert check(BASE, shipped_before={"1": 24}) == []  # 24 + 24 = all 4 cases
    assert check(BASE, shipped_before={"001": 24}) == []  # either form of the line number
    v = only(BASE, shipped_before={"1": 36})
    assert v.code == Code.QUANTITY_EXCEEDS_ACKNOWLEDGED
    assert "ships 24 eaches (2 Cases of 12) (+ 36 on earlier shipments)" in v.message


def test_backordered_units_may_ship() -> None:
    lines = (PO.lines[0].model_copy(update={"acceptedQuantity": 1, "backorderedQuantity": 1}),)
    po = PO.model_copy(update={"lines": (*lines, *PO.lines[1:])})
    model_check = partial(amazon_models.validate, "vendorShipments", "ShipmentConfirmation")
    ctx = AsnContext(now=NOW, po=po, model_check=model_check)
    assert validate_shipment_confirmation(BASE, ctx) == []


def test_item_of_a_rejected_line() -> None:
    asn = build(lambda d: d["cartons"][2]["items"].append({"sku": "KETTLE", "quantityEaches": 4}))
    v = only(asn)
    assert (v.code, v.field) == (Code.ITEM_NOT_ACKNOWLEDGED, "shippedItems/2")
    assert v.message == (
        "item 003 (SKU KETTLE) ships but PO line 3 was not accepted "
        "(nothing accepted or backordered)"
    )


def test_item_that_is_not_on_the_po() -> None:
    asn = build(lambda d: d["cartons"][2]["items"].append({"sku": "LAMP", "quantityEaches": 1}))
    v = only(asn)
    assert (v.code, v.field) == (Code.ITEM_NOT_ACKNOWLEDGED, "shippedItems/2")
    assert v.message == "item 004 (vendorProductIdentifier 'LAMP') is not a line of PO PO100001"


def test_product_identifiers_match_the_po_line() -> None:
    v = only(asn_with(lambda a: a["shippedItems"][1].update(vendorProductIdentifier="V-COFFEE")))
    assert (v.code, v.field) == (
        Code.IDENTIFIER_MISMATCH,
        "shippedItems/1/vendorProductIdentifier",
    )
    assert v.message == (
        "item 002 (SKU TEA) has vendorProductIdentifier 'V-COFFEE', the PO line has 'V-TEA'"
    )


def test_partial_case_in_a_carton_and_on_the_item() -> None:
    asn = build(lambda d: d["cartons"][0]["items"][0].update(quantityEaches=6))
    assert found(asn) == [
        (Code.PARTIAL_CASE, "shippedItems/0/shippedQuantity"),
        (Code.PARTIAL_CASE, "cartons/0/items/0/shippedQuantity"),
    ]
    item, carton = check(asn)
    assert item.message == (
        "item 001 (SKU MUG) holds 18 eaches = 1.5 cases of 12; the line was acknowledged in "
        "Cases of 12, ship whole cases"
    )
    assert carton.message.startswith(f"carton 001 (SSCC {A}) (item 001, SKU MUG) holds 6 eaches")


def test_quantity_in_the_wrong_unit() -> None:
    def eaches(a: dict[str, Any]) -> None:
        a["shippedItems"][0]["shippedQuantity"] = {"amount": 24, "unitOfMeasure": "Eaches"}

    v = only(asn_with(eaches))
    assert (v.code, v.field) == (Code.UNIT_MISMATCH, "shippedItems/0/shippedQuantity/unitOfMeasure")
    assert v.message.endswith("acknowledged in Cases of 12; send 2 Cases")

    def cases(a: dict[str, Any]) -> None:
        a["shippedItems"][1]["shippedQuantity"] = {
            "amount": 16,
            "unitOfMeasure": "Cases",
            "unitSize": 1,
        }

    assert (Code.UNIT_MISMATCH, "shippedItems/1/shippedQuantity/unitOfMeasure") in found(
        asn_with(cases)
    )


def test_case_size_differs_from_the_acknowledgement() -> None:
    v = only(
        asn_with(lambda a: a["shippedItems"][0]["shippedQuantity"].update(amount=4, unitSize=6))
    )
    assert (v.code, v.field) == (Code.UNIT_MISMATCH, "shippedItems/0/shippedQuantity/unitSize")
    assert (
        v.message == "item 001 (SKU MUG) has unitSize 6, the line was acknowledged in Cases of 12"
    )
    v = only(asn_with(lambda a: a["shippedItems"][0]["shippedQuantity"].pop("unitSize")))
    assert "has no unitSize" in v.message


def test_quantity_must_be_positive() -> None:
    asn = asn_with(lambda a: a["shippedItems"][1]["shippedQuantity"].update(amount=0))
    assert (Code.NON_POSITIVE_QUANTITY, "shippedItems/1/shippedQuantity/amount") in found(asn)


def test_containers_add_up_to_the_item() -> None:
    v = only(asn_with(lambda a: a["shippedItems"][0]["shippedQuantity"].update(amount=3)))
    assert (v.code, v.field) == (Code.CONTAINER_QUANTITY_MISMATCH, "shippedItems/0/shippedQuantity")
    assert v.message == (
        "item 001 (SKU MUG) ships 36 eaches (3 Cases of 12) but its cartons and pallets hold "
        "24 eaches (2 Cases of 12)"
    )


def test_item_sequence_numbers_are_unique() -> None:
    v = only(asn_with(lambda a: a["shippedItems"].append(copy.deepcopy(a["shippedItems"][1]))))
    assert (v.code, v.field) == (Code.DUPLICATE_ITEM_SEQUENCE, "shippedItems/2/itemSequenceNumber")


def test_shipment_without_items() -> None:
    assert (Code.NO_SHIPPED_ITEMS, "shippedItems") in found(
        asn_with(lambda a: a.update(shippedItems=[]))
    )


# ---------------------------------------------------------------- references


def test_container_item_references_a_shipped_item() -> None:
    v = only(
        asn_with(
            lambda a: a["cartons"][2]["items"].append(
                {
                    "itemReference": "099",
                    "shippedQuantity": {"amount": 1, "unitOfMeasure": "Eaches"},
                }
            )
        )
    )
    assert (v.code, v.field) == (Code.UNKNOWN_ITEM_REFERENCE, "cartons/2/items/1/itemReference")
    assert v.message == f"carton 003 (SSCC {C}) holds item '099', which is not in shippedItems"


def test_pallet_references_a_carton_of_the_shipment() -> None:
    stray = with_check_digit("00614141100000077")
    v = only(build(lambda d: d["pallets"][0]["cartons"].append(stray)))
    assert (v.code, v.field) == (
        Code.UNKNOWN_CARTON_REFERENCE,
        "pallets/0/cartonReferenceDetails/cartonReferenceNumbers/2",
    )
    assert v.message == (
        f"pallet 1 (SSCC {P}) references carton {stray!r}, which is not a cartonSequenceNumber "
        "of this shipment"
    )
    # cartonCount still matches the list, so only the reference is reported


def test_carton_on_two_pallets() -> None:
    other = with_check_digit("30614141200000001")
    v = only(build(lambda d: d["pallets"].append({"sscc": other, "cartons": [B]})))
    assert (v.code, v.message) == (
        Code.CARTON_ON_SEVERAL_PALLETS,
        f"carton 002 (SSCC {B}) is on pallet 1 (SSCC {P}) and on pallet 2 (SSCC {other})",
    )


def test_carton_count_matches_the_references() -> None:
    v = only(asn_with(lambda a: a["pallets"][0]["cartonReferenceDetails"].update(cartonCount=3)))
    assert (v.code, v.field) == (
        Code.CARTON_COUNT_MISMATCH,
        "pallets/0/cartonReferenceDetails/cartonCount",
    )


def test_carton_sequence_numbers_are_unique() -> None:
    v = only(asn_with(lambda a: a["cartons"][2].update(cartonSequenceNumber="001")))
    assert (v.code, v.field) == (Code.DUPLICATE_CARTON_SEQUENCE, "cartons/2/cartonSequenceNumber")


# ---------------------------------------------------------------- dates


def test_shipped_date_not_in_the_future() -> None:
    assert check(build(lambda d: d.update(shippedDate="2024-03-13T12:00:00Z"))) == []  # now
    asn = build(lambda d: d.update(shippedDate="2024-03-13T13:00:00Z"))
    v = only(asn)
    assert (v.code, v.field) == (Code.SHIPPED_DATE_IN_FUTURE, "shippedDate")
    assert v.message == (
        "shippedDate 2024-03-13T13:00:00Z is after now (2024-03-13T12:00:00Z); Amazon: the "
        "shipped date should not be in the future"
    )
    assert check(asn, future_tolerance=timedelta(hours=1)) == []


def test_shipped_date_is_required() -> None:
    v = only(asn_with(lambda a: a.pop("shippedDate")))
    assert (v.code, v.field) == (Code.MISSING_SHIPPED_DATE, "shippedDate")


@pytest.mark.parametrize("value", ["yesterday", "2024-03-13T10:00:00", "13/03/2024"])
def test_dates_are_iso_8601_with_an_offset(value: str) -> None:
    v = only(asn_with(lambda a: a.update(shippedDate=value)))
    assert (v.code, v.field) == (Code.INVALID_DATE, "shippedDate")


def test_delivery_after_shipping() -> None:
    asn = build(lambda d: d.update(estimatedDeliveryDate="2024-03-13T09:00:00Z"))
    v = only(asn)
    assert (v.code, v.field) == (Code.DELIVERY_BEFORE_SHIPPED, "estimatedDeliveryDate")


# ---------------------------------------------------------------- shipment identity


def used(
    po: str = "PO100001", days: float = 10, seller: str = "VNDR1", dispatch: str = "D-0"
) -> dict[str, UsedShipment]:
    return {
        "SHIP-1": UsedShipment(
            purchaseOrderNumber=po,
            sellingPartyId=seller,
            confirmedAt=NOW - timedelta(days=days),
            dispatchId=dispatch,
        )
    }


def test_shipment_id_not_reused_within_365_days() -> None:
    v = only(BASE, used_shipment_ids=used(po="PO099999"))
    assert (v.code, v.field) == (Code.SHIPMENT_ID_REUSED, "shipmentIdentifier")
    assert v.message == (
        "shipmentIdentifier 'SHIP-1' was already confirmed on 2024-03-03T12:00:00Z for PO "
        "PO099999; an Original needs an id not used in the last 365 days"
    )
    # same PO: the fix is a Replace
    assert only(BASE, used_shipment_ids=used()).message.endswith(
        "to correct that shipment send a Replace (isCorrection)"
    )
    assert check(BASE, used_shipment_ids=used(po="PO099999", days=366)) == []


def test_a_redelivered_dispatch_may_resend_its_original() -> None:
    assert check(BASE, used_shipment_ids=used(dispatch="D-1"), dispatch_id="D-1") == []


def test_replace_needs_the_original() -> None:
    asn = build(lambda d: d.update(isCorrection=True))
    v = only(asn)
    assert (v.code, v.field, v.message) == (
        Code.REPLACE_WITHOUT_ORIGINAL,
        "shipmentConfirmationType",
        "Replace of shipmentIdentifier 'SHIP-1', which was never confirmed",
    )
    assert check(asn, used_shipment_ids=used()) == []


def test_replace_keeps_the_selling_party() -> None:
    asn = build(lambda d: d.update(isCorrection=True))
    v = only(asn, used_shipment_ids=used(seller="VNDR9"))
    assert (v.code, v.field) == (Code.REPLACE_SELLING_PARTY_CHANGED, "sellingParty/partyId")
    assert v.message == "a Replace must repeat the original sellingParty 'VNDR9', got 'VNDR1'"


def test_replace_of_another_pos_shipment() -> None:
    asn = build(lambda d: d.update(isCorrection=True))
    v = only(asn, used_shipment_ids=used(po="PO099999"))
    assert v.code == Code.SHIPMENT_ID_REUSED


def test_parties_match_the_po() -> None:
    v = only(asn_with(lambda a: a["shipToParty"].update(partyId="SEA8")))
    assert (v.code, v.field, v.message) == (
        Code.PARTY_MISMATCH,
        "shipToParty/partyId",
        "shipToParty 'SEA8' differs from PO PO100001's 'RNO4'",
    )


def test_items_name_the_po() -> None:
    asn = build(lambda d: d.update(purchaseOrderNumber="PO100002"))  # joined to the wrong PO
    assert found(asn) == [
        (Code.PO_MISMATCH, "shippedItems/0/itemDetails/purchaseOrderNumber"),
        (Code.PO_MISMATCH, "shippedItems/1/itemDetails/purchaseOrderNumber"),
    ]
    assert check(asn)[0].message == "item 001 names PO 'PO100002'; this shipment is for PO PO100001"
    v = only(asn_with(lambda a: a["shippedItems"][1].pop("itemDetails")))
    assert v.message == "item 002 has no purchaseOrderNumber; this shipment is for PO PO100001"


def test_context_needs_an_aware_now() -> None:
    with pytest.raises(ValueError):
        AsnContext(now=datetime(2024, 3, 13), po=PO, model_check=lambda _: [])

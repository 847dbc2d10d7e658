"""Dispatch + PO state -> SP-API ShipmentConfirmation: mapping, units, and generated dispatches."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from streams.adapters import amazon_models
from streams.domain.asn import (
    AckLine,
    AsnContext,
    Code,
    Party,
    PoState,
    UsedShipment,
    build_shipment_confirmation,
    submit_request,
    validate_shipment_confirmation,
)
from streams.domain.dispatch import Dispatch
from streams.domain.gs1 import with_check_digit
from streams.domain.mapping import SkuMapping

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "schemas" / "examples" / "wms.dispatches"
WMS_SCHEMA = Draft202012Validator(
    json.loads((ROOT / "schemas" / "wms.dispatches.schema.json").read_text())
)
NOW = datetime(2024, 3, 13, 12, 0, tzinfo=UTC)
model_check = partial(amazon_models.validate, "vendorShipments", "ShipmentConfirmation")


def amazon_errors(asn: dict[str, Any]) -> list[str]:
    return model_check(asn) + amazon_models.validate(
        "vendorShipments", "SubmitShipmentConfirmationsRequest", submit_request(asn)
    )


def context(po: PoState, **kw: Any) -> AsnContext:
    return AsnContext(now=NOW, po=po, model_check=model_check, **kw)


def po(number: str, *lines: AckLine, seller: str = "VNDR1", ship_to: str = "RNO4") -> PoState:
    return PoState(
        purchaseOrderNumber=number,
        sellingParty=Party(partyId=seller),
        shipToParty=Party(partyId=ship_to),
        lines=lines,
    )


def line(seq: str, sku: str, qty: int, size: int | None = None, **kw: Any) -> AckLine:
    """A line acknowledged in Cases of ``size`` when given, else in Eaches."""
    return AckLine(
        itemSequenceNumber=seq,
        sku=sku,
        asin=kw.pop("asin", f"B0{sku[:8].upper():0<8}"),
        vendorProductIdentifier=kw.pop("vpi", f"V-{sku}"),
        acceptedQuantity=qty,
        unitOfMeasure="Cases" if size else "Eaches",
        unitSize=size,
        **kw,
    )


def example(name: str) -> Dispatch:
    return Dispatch.model_validate_json((EXAMPLES / name).read_bytes())


# The acknowledged POs the three example dispatches ship against.
EXAMPLE_POS = {
    "small-parcel.json": po(
        "2JK3S9VC", line("1", "MUG-BLUE-350", 2, 12), line("2", "TEA-EARLGREY-100", 10)
    ),
    "ltl.json": po(
        "3HX8QZ2A",
        line("1", "KETTLE-STEEL-17", 2, 4),
        line("2", "TEA-EARLGREY-100", 24),
        line("3", "MUG-BLUE-350", 1, 12),
    ),
    "truckload.json": po(
        "4PL2MN7B", line("1", "WATER-STILL-500", 80, 24), line("2", "WATER-SPARK-500", 30, 24)
    ),
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_POS))
def test_examples_build_valid_confirmations(name: str) -> None:
    state = EXAMPLE_POS[name]
    asn = build_shipment_confirmation(example(name), state, {}, NOW)
    assert amazon_errors(asn) == []
    assert validate_shipment_confirmation(asn, context(state)) == []


def test_small_parcel_confirmation_in_full() -> None:
    asn = build_shipment_confirmation(
        example("small-parcel.json"), EXAMPLE_POS["small-parcel.json"], {}, NOW
    )
    sscc = "containerIdentificationType"
    assert asn == {
        "shipmentIdentifier": "SP20240311001",
        "shipmentConfirmationType": "Original",
        "shipmentType": "SmallParcel",
        "shipmentStructure": "LooseAssortmentCase",
        "transportationDetails": {
            "carrierScac": "UPSN",
            "carrierShipmentReferenceNumber": "1Z999AA10123456784",
            "transportationMode": "Road",
        },
        "shipmentConfirmationDate": "2024-03-13T12:00:00Z",
        "shippedDate": "2024-03-11T14:05:00Z",
        "estimatedDeliveryDate": "2024-03-14T17:00:00Z",
        "sellingParty": {"partyId": "VNDR1"},
        "shipFromParty": {"partyId": "wh-reno"},
        "shipToParty": {"partyId": "RNO4"},
        "shipmentMeasurements": {"cartonCount": 2},
        "shippedItems": [
            {
                "itemSequenceNumber": "001",
                "amazonProductIdentifier": "B0MUG-BLUE",
                "vendorProductIdentifier": "V-MUG-BLUE-350",
                "shippedQuantity": {"amount": 2, "unitOfMeasure": "Cases", "unitSize": 12},
                "itemDetails": {"purchaseOrderNumber": "2JK3S9VC"},
            },
            {
                "itemSequenceNumber": "002",
                "amazonProductIdentifier": "B0TEA-EARL",
                "vendorProductIdentifier": "V-TEA-EARLGREY-100",
                "shippedQuantity": {"amount": 6, "unitOfMeasure": "Eaches"},
                "itemDetails": {"purchaseOrderNumber": "2JK3S9VC"},
            },
        ],
        "cartons": [
            {
                "cartonIdentifiers": [
                    {sscc: "SSCC", "containerIdentificationNumber": "006141411000000019"}
                ],
                "cartonSequenceNumber": "001",
                "trackingNumber": "1Z999AA10123456784",
                "items": [
                    {
                        "itemReference": "001",
                        "shippedQuantity": {"amount": 1, "unitOfMeasure": "Cases", "unitSize": 12},
                    }
                ],
            },
            {
                "cartonIdentifiers": [
                    {sscc: "SSCC", "containerIdentificationNumber": "006141411000000026"}
                ],
                "cartonSequenceNumber": "002",
                "trackingNumber": "1Z999AA10123456795",
                "items": [
                    {
                        "itemReference": "001",
                        "shippedQuantity": {"amount": 1, "unitOfMeasure": "Cases", "unitSize": 12},
                    },
                    {
                        "itemReference": "002",
                        "shippedQuantity": {"amount": 6, "unitOfMeasure": "Eaches"},
                    },
                ],
            },
        ],
    }


def test_pallets_reference_their_cartons_by_sequence_number() -> None:
    asn = build_shipment_confirmation(example("ltl.json"), EXAMPLE_POS["ltl.json"], {}, NOW)
    assert asn["shipmentStructure"] == "PalletizedAssortmentCase"
    assert asn["shipmentMeasurements"] == {"palletCount": 1}
    assert asn["transportationDetails"] == {
        "carrierScac": "ODFL",
        "carrierShipmentReferenceNumber": "07812345670",
        "transportationMode": "Road",
        "billOfLadingNumber": "BOL-CMH-778123",
    }
    assert asn["pallets"] == [
        {
            "palletIdentifiers": [
                {
                    "containerIdentificationType": "SSCC",
                    "containerIdentificationNumber": "306141412000000017",
                }
            ],
            "cartonReferenceDetails": {
                "cartonCount": 3,
                "cartonReferenceNumbers": ["001", "002", "003"],
            },
        }
    ]
    assert asn["shippedDate"] == "2024-03-12T14:30:00Z"  # -05:00 written in UTC


def test_pallet_of_items() -> None:
    asn = build_shipment_confirmation(
        example("truckload.json"), EXAMPLE_POS["truckload.json"], {}, NOW
    )
    assert asn["shipmentStructure"] == "PalletOfItems"
    assert "cartons" not in asn
    assert [p["items"] for p in asn["pallets"]] == [
        [
            {
                "itemReference": "001",
                "shippedQuantity": {"amount": 40, "unitOfMeasure": "Cases", "unitSize": 24},
            }
        ],
        [
            {
                "itemReference": "001",
                "shippedQuantity": {"amount": 40, "unitOfMeasure": "Cases", "unitSize": 24},
            }
        ],
        [
            {
                "itemReference": "002",
                "shippedQuantity": {"amount": 30, "unitOfMeasure": "Cases", "unitSize": 24},
            }
        ],
    ]
    assert [i["shippedQuantity"]["amount"] for i in asn["shippedItems"]] == [80, 30]


def _dispatch(**kw: Any) -> Dispatch:
    doc: dict[str, Any] = {
        "dispatchId": "D1",
        "shipmentId": "S1",
        "purchaseOrderNumber": "PO1",
        "shipFromWarehouse": "wh-1",
        "shippedDate": "2024-03-13T10:00:00Z",
        "shipmentType": "LessThanTruckLoad",
        "carrierScac": "ODFL",
        "proNumber": "PRO1",
        "billOfLading": "BOL-1",
        "cartons": [
            {
                "sscc": with_check_digit("00614141100000001"),
                "items": [{"sku": "A", "quantityEaches": 24}],
            },
        ],
    }
    doc.update(kw)
    return Dispatch.model_validate(doc)


def test_eaches_become_cases_of_the_acknowledged_size() -> None:
    asn = build_shipment_confirmation(_dispatch(), po("PO1", line("1", "A", 5, 12)), {}, NOW)
    assert asn["shippedItems"][0]["shippedQuantity"] == {
        "amount": 2,
        "unitOfMeasure": "Cases",
        "unitSize": 12,
    }


def test_a_partial_case_is_not_rounded() -> None:
    state = po("PO1", line("1", "A", 5, 10))
    asn = build_shipment_confirmation(_dispatch(), state, {}, NOW)
    # 24 eaches are 2.4 cases of 10: stated as eaches, and reported
    assert asn["shippedItems"][0]["shippedQuantity"] == {"amount": 24, "unitOfMeasure": "Eaches"}
    codes = {v.code for v in validate_shipment_confirmation(asn, context(state))}
    assert codes == {Code.PARTIAL_CASE}


def test_sequence_numbers_follow_the_po_lines_numerically() -> None:
    state = po("PO1", line("10", "B", 5), line("2", "A", 30))
    d = _dispatch(
        cartons=[
            {
                "sscc": with_check_digit("00614141100000001"),
                "items": [{"sku": "B", "quantityEaches": 1}, {"sku": "A", "quantityEaches": 2}],
            }
        ]
    )
    asn = build_shipment_confirmation(d, state, {}, NOW)
    assert [i["itemSequenceNumber"] for i in asn["shippedItems"]] == ["002", "010"]
    assert [i["itemReference"] for i in asn["cartons"][0]["items"]] == ["010", "002"]


def test_a_sku_not_on_the_po_becomes_its_own_item() -> None:
    state = po("PO1", line("1", "A", 30), line("3", "B", 30))
    d = _dispatch(
        cartons=[
            {
                "sscc": with_check_digit("00614141100000001"),
                "items": [
                    {"sku": "A", "quantityEaches": 1},
                    {"sku": "X", "quantityEaches": 2},
                    {"sku": "Y", "quantityEaches": 3},
                ],
            }
        ]
    )
    data = {"X": SkuMapping(sku="X", asin="B0XXXXXXXX", vendorProductIdentifier="V-X")}
    asn = build_shipment_confirmation(d, state, data, NOW)
    extra = asn["shippedItems"][1:]
    assert [
        (i["itemSequenceNumber"], i.get("amazonProductIdentifier"), i["vendorProductIdentifier"])
        for i in extra
    ] == [
        ("004", "B0XXXXXXXX", "V-X"),
        ("005", None, "Y"),  # no master data: the SKU names it
    ]
    violations = validate_shipment_confirmation(asn, context(state))
    assert [(v.code, v.field) for v in violations] == [
        (Code.ITEM_NOT_ACKNOWLEDGED, "shippedItems/1"),
        (Code.ITEM_NOT_ACKNOWLEDGED, "shippedItems/2"),
    ]
    assert "vendorProductIdentifier 'Y'" in violations[1].message


def test_a_sku_on_two_lines_fills_them_in_order() -> None:
    state = po("PO1", line("1", "A", 1, 12), line("2", "A", 2, 12))
    d = _dispatch(
        cartons=[
            {
                "sscc": with_check_digit("00614141100000001"),
                "items": [{"sku": "A", "quantityEaches": 24}],
            },
            {
                "sscc": with_check_digit("00614141100000002"),
                "items": [{"sku": "A", "quantityEaches": 12}],
            },
        ]
    )
    asn = build_shipment_confirmation(d, state, {}, NOW)
    assert [
        (i["itemSequenceNumber"], i["shippedQuantity"]["amount"]) for i in asn["shippedItems"]
    ] == [("001", 1), ("002", 2)]
    assert [
        (x["itemReference"], x["shippedQuantity"]["amount"])
        for c in asn["cartons"]
        for x in c["items"]
    ] == [("001", 1), ("002", 1), ("002", 1)]
    assert validate_shipment_confirmation(asn, context(state)) == []


def test_master_data_fills_missing_identifiers() -> None:
    state = po("PO1", line("1", "A", 30, asin=None, vpi=None))
    data = {"A": SkuMapping(sku="A", asin="B0AAAAAAAA", vendorProductIdentifier="0614141000036")}
    item = build_shipment_confirmation(_dispatch(), state, data, NOW)["shippedItems"][0]
    assert item["amazonProductIdentifier"] == "B0AAAAAAAA"
    assert item["vendorProductIdentifier"] == "0614141000036"


def test_a_correction_replaces_the_same_shipment() -> None:
    asn = build_shipment_confirmation(
        _dispatch(isCorrection=True), po("PO1", line("1", "A", 30)), {}, NOW
    )
    assert asn["shipmentConfirmationType"] == "Replace"
    assert asn["shipmentIdentifier"] == "S1"


@pytest.mark.parametrize(
    ("fields", "reference"),
    [
        ({"proNumber": "PRO9", "trackingNumbers": ["T1"]}, "PRO9"),
        ({"proNumber": None, "trackingNumbers": ["T1", "T2"]}, "T1"),
        ({"proNumber": None, "shipmentType": "SmallParcel"}, "1Z-CARTON"),
        ({"proNumber": None}, None),  # freight without a PRO: left out, then reported
    ],
)
def test_carrier_reference_is_pro_then_tracking(
    fields: dict[str, Any], reference: str | None
) -> None:
    d = _dispatch(
        cartons=[
            {
                "sscc": with_check_digit("00614141100000001"),
                "trackingNumber": "1Z-CARTON",
                "items": [{"sku": "A", "quantityEaches": 1}],
            }
        ],
        **fields,
    )
    td = build_shipment_confirmation(d, po("PO1", line("1", "A", 30)), {}, NOW)[
        "transportationDetails"
    ]
    assert td.get("carrierShipmentReferenceNumber") == reference


def test_scac_is_trimmed_and_upper_cased() -> None:
    asn = build_shipment_confirmation(
        _dispatch(carrierScac=" odfl "), po("PO1", line("1", "A", 30)), {}, NOW
    )
    assert asn["transportationDetails"]["carrierScac"] == "ODFL"


def test_parties_come_from_the_po_in_the_shipment_shape() -> None:
    address = {"name": "ACME", "addressLine1": "1 Main St", "countryCode": "US"}
    state = PoState(
        purchaseOrderNumber="PO1",
        sellingParty=Party(
            partyId="VNDR1",
            address=address,
            taxInfo={"taxRegistrationType": "VAT", "taxRegistrationNumber": "DE123"},
        ),
        shipToParty=Party(partyId="RNO4"),
        lines=(line("1", "A", 30),),
    )
    ship_from = Party(partyId="ACME-RENO", address=address)
    asn = build_shipment_confirmation(_dispatch(), state, {}, NOW, ship_from=ship_from)
    assert asn["sellingParty"] == {
        "partyId": "VNDR1",
        "address": address,
        "taxRegistrationDetails": [
            {"taxRegistrationType": "VAT", "taxRegistrationNumber": "DE123"}
        ],
    }
    assert asn["shipFromParty"] == {"partyId": "ACME-RENO", "address": address}
    assert amazon_errors(asn) == []


def test_sscc_with_application_identifier() -> None:
    state = po("PO1", line("1", "A", 30))
    asn = build_shipment_confirmation(_dispatch(), state, {}, NOW, sscc_with_ai=True)
    number = asn["cartons"][0]["cartonIdentifiers"][0]["containerIdentificationNumber"]
    assert number == "00" + with_check_digit("00614141100000001")
    assert validate_shipment_confirmation(asn, context(state)) == []


def test_building_is_deterministic_and_rejects_naive_time() -> None:
    state = po("PO1", line("1", "A", 30))
    assert build_shipment_confirmation(_dispatch(), state, {}, NOW) == (
        build_shipment_confirmation(_dispatch(), state, {}, NOW)
    )
    with pytest.raises(ValueError):
        build_shipment_confirmation(_dispatch(), state, {}, datetime(2024, 3, 13))


def test_ack_line_in_cases_needs_its_size() -> None:
    with pytest.raises(ValueError):
        AckLine(itemSequenceNumber="1", sku="A", acceptedQuantity=1, unitOfMeasure="Cases")


# ---------------------------------------------------------------- generated dispatches

SHIPMENT_TYPES = ("SmallParcel", "LessThanTruckLoad", "TruckLoad")


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Dispatch, PoState, AsnContext]:
    """A well-formed dispatch that ships at most what its PO acknowledged, in whole cases."""
    lines = []
    for i in range(draw(st.integers(1, 4))):
        size = draw(st.one_of(st.none(), st.integers(1, 24)))
        lines.append(
            line(
                str(i + 1),
                f"SKU-{i}",
                draw(st.integers(0 if i else 1, 20)),  # later lines may be rejected (0)
                size,
                backorderedQuantity=draw(st.integers(0, 3)),
            )
        )
    chunks: list[tuple[str, int]] = []  # (sku, eaches) of whole ordering units
    for ln in lines:
        units = draw(st.integers(0, ln.acceptedQuantity + ln.backorderedQuantity))
        while units:
            k = draw(st.integers(1, units))
            chunks.append((ln.sku, k * ln.case_size))
            units -= k
    if not chunks:
        chunks.append((lines[0].sku, lines[0].case_size))  # line 1 accepts at least one
    chunks = draw(st.permutations(chunks))

    kind = draw(st.sampled_from(SHIPMENT_TYPES))
    layout = (
        "cartons"
        if kind == "SmallParcel"
        else draw(st.sampled_from(["cartons", "palletized", "pallet-of-items"]))
    )
    groups = _split(draw, chunks)
    bodies = draw(
        st.lists(
            st.integers(0, 10**17 - 1),
            unique=True,
            min_size=2 * len(groups) + 1,
            max_size=2 * len(groups) + 1,
        )
    )
    ssccs = [with_check_digit(f"{b:017d}") for b in bodies]

    def goods(group: list[tuple[str, int]]) -> list[dict[str, Any]]:
        return [{"sku": s, "quantityEaches": q} for s, q in group]

    doc: dict[str, Any] = {"cartons": [], "pallets": []}
    if layout == "pallet-of-items":
        doc["pallets"] = [{"sscc": ssccs[i], "items": goods(g)} for i, g in enumerate(groups)]
    else:
        tracking = kind == "SmallParcel" or draw(st.booleans())
        doc["cartons"] = [
            {"sscc": ssccs[i], "items": goods(g)}
            | ({"trackingNumber": f"1Z{bodies[i]:016d}"} if tracking else {})
            for i, g in enumerate(groups)
        ]
        if layout == "palletized":
            refs = [c["sscc"] for c in doc["cartons"]]
            doc["pallets"] = [
                {"sscc": ssccs[len(groups) + j], "cartons": part}
                for j, part in enumerate(_split(draw, refs))
            ]
    shipped = NOW - timedelta(minutes=draw(st.integers(0, 7 * 24 * 60)))
    freight = kind != "SmallParcel"
    doc |= {
        "dispatchId": draw(st.from_regex(r"D-[0-9]{1,8}", fullmatch=True)),
        "shipmentId": draw(st.from_regex(r"[A-Z0-9]{4,20}", fullmatch=True)),
        "purchaseOrderNumber": "PO123456",
        "shipFromWarehouse": "wh-1",
        "shippedDate": shipped.isoformat(),
        "shipmentType": kind,
        "carrierScac": draw(st.from_regex(r"[A-Z]{2,4}", fullmatch=True)),
        "isCorrection": draw(st.booleans()),
    }
    if freight or draw(st.booleans()):
        doc["proNumber"] = draw(st.from_regex(r"[0-9]{6,11}", fullmatch=True))
    if freight or draw(st.booleans()):
        doc["billOfLading"] = "BOL" + draw(st.from_regex(r"[0-9]{4,10}", fullmatch=True))
    if draw(st.booleans()):
        eta = shipped + timedelta(hours=draw(st.integers(0, 240)))
        doc["estimatedDeliveryDate"] = eta.isoformat()
    doc = {k: v for k, v in doc.items() if v != []}
    dispatch = Dispatch.model_validate(doc)

    state = po("PO123456", *lines)
    used = {}
    if dispatch.isCorrection:  # a Replace needs the Original on record
        used[dispatch.shipmentId] = UsedShipment(
            purchaseOrderNumber="PO123456", sellingPartyId="VNDR1", confirmedAt=NOW - timedelta(1)
        )
    return dispatch, state, context(state, used_shipment_ids=used, dispatch_id=dispatch.dispatchId)


def _split(draw: st.DrawFn, xs: list[Any]) -> list[list[Any]]:
    """``xs`` cut into 1..len(xs) non-empty consecutive groups."""
    cuts = sorted(draw(st.sets(st.integers(1, len(xs) - 1), max_size=5))) if len(xs) > 1 else []
    bounds = [0, *cuts, len(xs)]
    return [xs[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_every_valid_dispatch_builds_a_valid_confirmation(
    scenario: tuple[Dispatch, PoState, AsnContext],
) -> None:
    dispatch, state, ctx = scenario
    assert list(WMS_SCHEMA.iter_errors(dispatch.model_dump(mode="json", exclude_none=True))) == []
    asn = build_shipment_confirmation(dispatch, state, {}, NOW)
    assert model_check(asn) == []
    assert (
        amazon_models.validate(
            "vendorShipments", "SubmitShipmentConfirmationsRequest", submit_request(asn)
        )
        == []
    )
    assert validate_shipment_confirmation(asn, ctx) == []
    # the ASN carries exactly what left the warehouse, per PO line, in eaches
    shipped = dispatch.shipped_eaches()
    for item in asn["shippedItems"]:
        ln = state.line(item["itemSequenceNumber"])
        assert ln is not None
        q = item["shippedQuantity"]
        assert q["amount"] * q.get("unitSize", 1) == shipped[ln.sku]


@settings(max_examples=60, deadline=None)
@given(scenarios(), st.data())
def test_one_more_case_than_acknowledged_is_always_reported(
    scenario: tuple[Dispatch, PoState, AsnContext], data: st.DataObject
) -> None:
    dispatch, state, ctx = scenario
    ln = data.draw(st.sampled_from(state.lines))
    others = dispatch.shipped_eaches().get(ln.sku, 0)
    ctx = AsnContext(
        now=ctx.now,
        po=ctx.po,
        model_check=model_check,
        used_shipment_ids=ctx.used_shipment_ids,
        # earlier shipments took everything the line had left, so this one is over by >= 1
        shipped_before={ln.itemSequenceNumber: ln.acknowledged_eaches - others + ln.case_size},
    )
    asn = build_shipment_confirmation(dispatch, state, {}, NOW)
    codes = {v.code for v in validate_shipment_confirmation(asn, ctx)}
    if others:
        assert Code.QUANTITY_EXCEEDS_ACKNOWLEDGED in codes
    else:
        assert codes == set()  # the line is not on this shipment

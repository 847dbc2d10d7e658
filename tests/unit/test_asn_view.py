"""read_asn: the typed view the ASN rules judge. It never raises, keeps what was written where
messages need it, and reads wrong types as absent."""

from __future__ import annotations

from typing import Any

import pytest

from streams.domain.asn_view import Quantity, read_asn


@pytest.mark.parametrize(
    "garbage",
    [None, [], "x", 5, {"shippedItems": "x", "cartons": [1, None], "pallets": {"a": 1}}],
)
def test_any_json_reads(garbage: Any) -> None:
    view = read_asn(garbage)
    assert view.shipment_id is None
    assert not view.items and not view.pallets
    assert all(not c.has_ids and not c.contents for c in view.cartons)


def test_cleaned_and_written_values() -> None:
    view = read_asn(
        {
            "shipmentIdentifier": "  S-1 ",
            "shippedDate": None,
            "shippedItems": [
                {
                    "itemSequenceNumber": " 001",
                    "itemDetails": {"purchaseOrderNumber": "PO1"},
                    "vendorProductIdentifier": 7,
                    "shippedQuantity": {"amount": 2, "unitOfMeasure": "Cases", "unitSize": 6},
                },
                {"itemSequenceNumber": "001"},
            ],
            "cartons": [
                {
                    "cartonIdentifiers": [
                        {"containerIdentificationType": "Other"},
                        {
                            "containerIdentificationType": "SSCC",
                            "containerIdentificationNumber": "A",
                        },
                        {"containerIdentificationType": "SSCC", "containerIdentificationNumber": 9},
                    ],
                    "items": [{"itemReference": " 001 "}],
                }
            ],
            "pallets": [{"cartonReferenceDetails": {"cartonReferenceNumbers": ["001", 2]}}],
        }
    )
    assert (view.shipment_id, view.shipment_id_written) == ("S-1", "  S-1 ")
    assert view.shipped_date_given and view.dates == ()  # null: given, but no date
    first, second = view.items
    assert (first.seq, first.seq_written, first.purchase_order) == ("001", " 001", "PO1")
    assert first.product == "vendorProductIdentifier 7"
    assert view.first_items() == {"001": first}  # the first of a repeat
    assert second.product == "no product identifier"
    (carton,) = view.cartons
    assert carton.name == "carton #1 (SSCC A)"
    assert carton.ssccs == ((1, "A"),)  # a number that is no string is no SSCC
    assert carton.contents[0].ref == "001"
    (pallet,) = view.pallets
    assert (pallet.name, pallet.refs, pallet.refs_given) == ("pallet 1", ("001", 2), True)


@pytest.mark.parametrize(
    ("raw", "eaches"),
    [
        ({"amount": 2, "unitOfMeasure": "Cases", "unitSize": 6}, 12),
        ({"amount": 2, "unitOfMeasure": "Cases"}, 8),  # the line's case size
        ({"amount": 2, "unitOfMeasure": "Cases", "unitSize": 0}, 8),
        ({"amount": 5, "unitOfMeasure": "Eaches"}, 5),
        ({"amount": True, "unitOfMeasure": "Eaches"}, None),
        ({"amount": "5", "unitOfMeasure": "Eaches"}, None),
        ({"amount": 5, "unitOfMeasure": "Pallets"}, None),
        (None, None),
    ],
)
def test_quantity_in_eaches(raw: Any, eaches: int | None) -> None:
    assert Quantity.read(raw).eaches(case_size=4) == eaches

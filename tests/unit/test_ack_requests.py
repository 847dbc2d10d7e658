"""Several acknowledgements per submitAcknowledgement request: grouping and the body."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.adapters import amazon_models
from streams.domain.acknowledgement import plan_requests, request_body


def ack(po: str, items: int = 1) -> bytes:
    body = {
        "purchaseOrderNumber": po,
        "sellingParty": {"partyId": "VENDOR1"},
        "acknowledgementDate": "2024-03-01T12:00:00Z",
        "items": [
            {
                "itemSequenceNumber": str(i + 1),
                "orderedQuantity": {"amount": 1, "unitOfMeasure": "Eaches"},
                "netCost": {"currencyCode": "USD", "amount": "1.00"},
                "itemAcknowledgements": [
                    {
                        "acknowledgementCode": "Accepted",
                        "acknowledgedQuantity": {"amount": 1, "unitOfMeasure": "Eaches"},
                    }
                ],
            }
            for i in range(items)
        ],
    }
    return orjson.dumps(body)


def test_the_body_embeds_each_acknowledgement_unchanged_and_is_amazons_request() -> None:
    built = [ack("PO000001"), ack("PO000002", 3)]
    body = request_body(built)
    assert body == b'{"acknowledgements":[' + built[0] + b"," + built[1] + b"]}"
    parsed = orjson.loads(body)
    assert [orjson.dumps(a) for a in parsed["acknowledgements"]] == built
    assert amazon_models.validate("vendorOrders", "SubmitAcknowledgementRequest", parsed) == []


def test_what_waits_goes_together_up_to_the_count() -> None:
    pending = [(f"PO{i:06d}", ack(f"PO{i:06d}")) for i in range(7)]
    assert plan_requests(pending, 3, 10**6) == [[0, 1, 2], [3, 4, 5], [6]]
    assert plan_requests(pending, 50, 10**6) == [list(range(7))]
    assert plan_requests(pending[:1], 50, 10**6) == [[0]]
    assert plan_requests([], 50, 10**6) == []
    with pytest.raises(ValueError):
        plan_requests(pending, 0, 10**6)


def test_a_po_is_at_most_once_per_request_and_keeps_its_order() -> None:
    # two revisions of PO A waiting at once: the newer one goes in a later request
    pending = [("A", ack("A")), ("B", ack("B")), ("A", ack("A", 2)), ("C", ack("C"))]
    assert plan_requests(pending, 50, 10**6) == [[0, 1], [2, 3]]


def test_the_body_stays_within_the_byte_limit() -> None:
    pending = [(f"PO{i:06d}", ack(f"PO{i:06d}", 20)) for i in range(10)]
    one = len(request_body([pending[0][1]]))
    limit = len(request_body([b for _, b in pending[:3]]))
    plan = plan_requests(pending, 50, limit)
    assert plan == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    # an acknowledgement larger than the limit still goes, alone
    assert plan_requests(pending[:2], 50, one - 1) == [[0], [1]]


@given(
    st.lists(st.tuples(st.sampled_from("ABCDEFG"), st.integers(1, 30)), max_size=40),
    st.integers(1, 8),
    st.integers(200, 20_000),
)
def test_every_acknowledgement_once_in_order_within_bounds(
    spec: list[tuple[str, int]], max_count: int, max_bytes: int
) -> None:
    pending = [(po, ack(po, n)) for po, n in spec]
    plan = plan_requests(pending, max_count, max_bytes)
    assert [i for request in plan for i in request] == list(range(len(pending)))
    for request in plan:
        assert 1 <= len(request) <= max_count
        numbers = [pending[i][0] for i in request]
        assert len(set(numbers)) == len(numbers)
        if len(request) > 1:
            assert len(request_body([pending[i][1] for i in request])) <= max_bytes

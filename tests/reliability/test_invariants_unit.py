"""The invariant checker on hand-made topic contents: it passes what is consistent and names
each violation it is shown (a checker that cannot fail would prove nothing)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from tests.support.badinput import ct_message, inventory_command, po_item, purchase_order
from tests.support.invariants import LEDGER_FIELD, Report, Topics, check
from tests.support.kafka import Record

CH = "ch-1"


def rec(key: str | bytes | None, value: Any, offset: int, partition: int = 0) -> Record:
    k = key.encode() if isinstance(key, str) else key
    v = value if isinstance(value, bytes | None) else orjson.dumps(value)
    return Record(k, v, partition, offset)


def mapping(sku: str, **extra: Any) -> dict[str, Any]:
    return {"sku": sku, "asin": "B000000001", "amazonChannels": [CH], **extra}


def update(sku: str, amount: int) -> dict[str, Any]:
    return {"sku": sku, "availableQuantity": {"amount": amount, "unitOfMeasure": "Each"}}


def ack(po: str, accepted: int, seq: str = "1") -> dict[str, Any]:
    return {
        "purchaseOrderNumber": po,
        "sellingParty": {"partyId": "VENDOR1"},
        "acknowledgementDate": "2026-11-27T12:00:00Z",
        "items": [
            {
                "itemSequenceNumber": seq,
                "itemAcknowledgements": [
                    {
                        "acknowledgementCode": "Accepted",
                        "acknowledgedQuantity": {"amount": accepted, "unitOfMeasure": "Eaches"},
                    }
                ],
            }
        ],
    }


def dead(value: bytes | None, error: str, topic: str, offset: int) -> dict[str, Any]:
    return {
        "error": error,
        "source": {"topic": topic, "partition": 0, "offset": offset},
        "valueBase64": base64.b64encode(value).decode() if value is not None else None,
    }


def world() -> Topics:
    """A consistent little world: SKU-A has 10 on ch-1 and 5 on an ineligible channel, a PO
    accepted 3 of it (reserved), Amazon was told 7; one bad stock message is dead-lettered."""
    bad = b"{not json"
    return Topics(
        ct_messages=[
            rec("ct", ct_message("e1", "SKU-A", CH, 1, 8), 0),
            rec("ct", ct_message("e1", "SKU-A", CH, 2, 10), 1),
            rec("ct", ct_message("e1", "SKU-A", CH, 1, 8), 2),  # stale replay
            rec("ct", ct_message("e2", "SKU-A", "other", 1, 5), 3),
            rec("ct", bad, 4),
        ],
        sku_mappings=[rec("SKU-A", mapping("SKU-A"), 0)],
        purchase_orders=[rec("PO1", purchase_order("PO1", [po_item("1", "B000000001", 3)]), 0)],
        inventory_commands=[
            rec("SKU-A", inventory_command("reserve:PO1#1:1", "reserve", "SKU-A", CH, 3, "PO1"), 0),
            # redelivered with the same id and content: fine
            rec("SKU-A", inventory_command("reserve:PO1#1:1", "reserve", "SKU-A", CH, 3, "PO1"), 1),
        ],
        po_acknowledgements=[rec("PO1", ack("PO1", 3), 0), rec("PO1", ack("PO1", 3), 1)],
        inventory_updates=[
            rec("SKU-A", update("SKU-A", 5), 0),
            rec("SKU-A", update("SKU-A", 7), 1),
        ],
        dlq={"ct_messages": [rec("ct", dead(bad, "not JSON: x", "ct.messages", 4), 0)]},
        names={"ct_messages": "ct.messages"},
    )


def violations(t: Topics, **kw: Any) -> list[str]:
    r: Report = check(t, **kw)
    return r.violations


def test_a_consistent_world_passes() -> None:
    r = check(world())
    assert r.ok, r.summary()
    assert r.checked["skus"] == 1 and r.checked["acknowledged lines"] == 1


def test_wrong_published_availability() -> None:
    t = world()
    t.inventory_updates.append(rec("SKU-A", update("SKU-A", 10), 2))  # forgot the allocation
    [v] = violations(t)
    assert "SKU SKU-A: last published 10" in v and "= 7" in v


def test_never_published() -> None:
    t = world()
    t.inventory_updates = []
    assert any("last published None" in v for v in violations(t))


def test_safety_buffer_and_obsolete() -> None:
    t = world()
    t.sku_mappings.append(rec("SKU-A", mapping("SKU-A", safetyBuffer=2), 1))
    assert any("= 5" in v for v in violations(t))
    t.inventory_updates.append(rec("SKU-A", update("SKU-A", 5), 2))
    assert violations(t) == []
    t.sku_mappings.append(rec("SKU-A", mapping("SKU-A", obsolete=True), 2))
    assert any("= 0" in v for v in violations(t))


def test_double_allocation_is_caught() -> None:
    t = world()
    # a second reservation for the same line under another id: the line holds 6, not 3
    cmd = inventory_command("reserve:PO1#1:2", "reserve", "SKU-A", CH, 3, "PO1")
    t.inventory_commands.append(rec("SKU-A", cmd, 2))
    t.inventory_updates.append(rec("SKU-A", update("SKU-A", 4), 2))
    [v] = violations(t)
    assert "PO PO1 line 1: accepted 3 eaches but 6 reserved" in v


def test_one_command_id_two_contents() -> None:
    t = world()
    cmd = inventory_command("reserve:PO1#1:1", "reserve", "SKU-A", CH, 4, "PO1")
    t.inventory_commands.append(rec("SKU-A", cmd, 2))
    assert any("command reserve:PO1#1:1: two contents" in v for v in violations(t))


def test_second_different_acknowledgement() -> None:
    t = world()
    other = ack("PO1", 3)
    other["acknowledgementDate"] = "2026-11-27T13:00:00Z"
    t.po_acknowledgements.append(rec("PO1", other, 2))
    assert any("PO PO1: 2 different acknowledgements" in v for v in violations(t))


def test_acknowledgement_under_the_wrong_key() -> None:
    t = world()
    t.po_acknowledgements.append(rec("PO2", ack("PO1", 3), 2))
    assert any("key 'PO2' is not its PO" in v for v in violations(t))


def test_sandbox_received_what_the_topic_has_only() -> None:
    t = world()
    ok = {"status": 202, "body": {"acknowledgements": [ack("PO1", 3)]}}
    assert violations(t, sandbox_acks=[ok, ok, {"status": 429, "body": {}}]) == []
    changed = {"status": 202, "body": {"acknowledgements": [ack("PO1", 2)]}}
    found = violations(t, sandbox_acks=[ok, changed])
    assert any("not on the topic" in v for v in found)
    assert any("Amazon accepted 2 different acknowledgements" in v for v in found)


def test_po_neither_acknowledged_nor_exception() -> None:
    t = world()
    t.purchase_orders.append(rec("PO2", purchase_order("PO2", [po_item("1", "B0X", 1)]), 1))
    assert any("PO PO2: neither acknowledged nor an owned exception" in v for v in violations(t))
    exc = {"kind": "unit-of-measure", "refs": {"purchaseOrderNumber": "PO2"}}
    t.exceptions.append(rec("x", exc, 0))
    assert violations(t) == []


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ({"error": ""}, "no reason"),
        ({"source": {"topic": "ct.messages", "partition": 0, "offset": 0}}, "other bytes"),
        ({"source": {"topic": "ct.messages", "partition": 0, "offset": 99}}, "is no record"),
        ({"source": {"topic": "elsewhere", "partition": 0, "offset": 4}}, "source topic"),
    ],
)
def test_bad_dead_letters(change: dict[str, Any], expect: str) -> None:
    t = world()
    d = {**dead(b"{not json", "not JSON: x", "ct.messages", 4), **change}
    t.dlq["ct_messages"] = [rec("ct", d, 0)]
    assert any(expect in v for v in violations(t)), violations(t)


def test_undead_lettered_garbage_is_caught() -> None:
    t = world()
    t.dlq["ct_messages"] = []  # the bad record was "taken": it cannot have been
    assert any("taken but not a JSON object" in v for v in violations(t))


def entries(quantity: int, ledger: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "id": "e1",
            "sku": "SKU-A",
            "version": 5,
            "quantityOnStock": quantity,
            "supplyChannel": {"typeId": "channel", "id": CH},
            "custom": {"fields": {LEDGER_FIELD: ledger}},
        }
    ]


def test_commercetools_quantities_and_ledger() -> None:
    t = world()
    base = {("SKU-A", CH): 10}
    ok = entries(7, ["3:reserve:PO1#1:1"])
    # applied at version 3 > the stock message's version 2: still open, published 7 holds
    assert violations(t, ct_entries=ok, ct_base=base) == []
    twice = entries(4, ["3:reserve:PO1#1:1", "4:reserve:PO1#1:1"])
    assert any("applied 2 times" in v for v in violations(t, ct_entries=twice, ct_base=base))
    wrong = entries(9, ["3:reserve:PO1#1:1"])
    assert any("quantityOnStock 9 != 7" in v for v in violations(t, ct_entries=wrong, ct_base=base))
    never = entries(10, [])
    found = violations(t, ct_entries=never, ct_base=base)
    assert any("never applied" in v for v in found)
    assert any("neither applied in commercetools nor dead-lettered" in v for v in found)


def test_reflected_allocation_is_not_subtracted_twice() -> None:
    t = world()
    # commercetools applied the reservation at version 2 and the stock message of version 2
    # already shows 10 - 3 = 7: the worker must publish 7, not 4
    t.ct_messages[1] = rec("ct", ct_message("e1", "SKU-A", CH, 2, 7), 1)
    t.ct_messages.append(rec("ct", ct_message("e1", "SKU-A", CH, 2, 7, msg_id="again"), 5))
    found = violations(t, ct_entries=entries(7, ["2:reserve:PO1#1:1"]))
    assert found == [], found
    assert any("= 4" in v for v in violations(t))  # without the ledger it counts as open


def test_invalid_asn() -> None:
    t = world()
    t.shipment_confirmations = [rec("S1", {"shipmentIdentifier": "S1"}, 0)]
    assert any("ASN b'S1' on the topic" in v for v in violations(t))
    sent = [{"status": 202, "body": {"shipmentConfirmations": [{"shipmentIdentifier": "S2"}]}}]
    t.shipment_confirmations = []
    assert any("'S2' sent to Amazon" in v for v in violations(t, sandbox_asns=sent))
    assert any("rule" in v for v in violations(t, sandbox_asns=sent, asn_rules=lambda a: ["rule"]))


def test_dispatch_without_asn_or_exception() -> None:
    t = world()
    t.dispatches = [rec("PO1", {"shipmentId": "S9", "purchaseOrderNumber": "PO9"}, 0)]
    assert any("dispatch S9 (PO PO9): no ASN and no exception" in v for v in violations(t))

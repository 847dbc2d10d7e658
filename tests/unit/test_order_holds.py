"""Storefront order holds in the SKU state: at once off Amazon's figure, once per order line,
ended by the first read that must show the order (domain/order_holds.py, domain/inventory.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from streams.adapters.codecs import dumps, loads
from streams.agents.rereads import read_bundles
from streams.domain.ctmessages import StockObservation
from streams.domain.inventory import SkuState, stored_clean
from streams.domain.mapping import SkuMapping
from streams.domain.purchase_orders import PoLine

DELAY = 10.0


def state(available: int = 10, channel: str = "wh-1", version: int = 3) -> SkuState:
    s = SkuState("SKU-1", mapping=SkuMapping(sku="SKU-1", asin="B0TEST0001"))
    s.apply(StockObservation("SKU-1", channel, "e-1", version, "set", available, available))
    return s


def read(s: SkuState, available: int, version: int) -> None:
    s.apply(StockObservation("SKU-1", "wh-1", "e-1", version, "set", available, available))


def test_a_hold_lowers_availability_at_once_and_a_redelivery_never_holds_twice() -> None:
    s = state(10)
    assert s.place_hold("o1:l1", "wh-1", 4, 100.0, 110.0)
    assert s.availability() == 6
    assert not s.place_hold("o1:l1", "wh-1", 4, 101.0, 111.0)
    assert s.availability() == 6
    assert s.reread_at == 110.0


def _line(seq: str) -> PoLine:
    return PoLine.model_validate(
        {
            "purchaseOrderNumber": "PO1",
            "itemSequenceNumber": seq,
            "lineCount": 2,
            "revision": "2026-12-06T00:00:00Z",
            "sku": "SKU-1",
            "eaches": 2,
            "orderedQuantity": {"amount": 2, "unitOfMeasure": "Eaches"},
            "isBackOrderAllowed": False,
            "netCost": {"amount": "5.00", "currencyCode": "EUR"},
        }
    )


def test_the_last_units_sold_on_the_storefront_leave_nothing_for_a_purchase_order() -> None:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    kw = {"backorder_lead_days": 0, "price_tolerance": Decimal("0")}
    s = state(5)
    before, commands = s.allocate(_line("1"), now, **kw)  # type: ignore[arg-type]
    assert before.decision.status == "Accepted" and len(commands) == 1
    s.place_hold("o1:l1", "wh-1", 3, 100.0, 110.0)  # 5 - 2 allocated - 3 sold = 0
    assert s.availability() == 0
    after, commands = s.allocate(_line("2"), now, **kw)  # type: ignore[arg-type]
    assert after.decision.status == "Rejected" and after.decision.accepted == 0
    assert commands == []


def test_a_read_after_the_delay_showing_the_order_settles_the_hold() -> None:
    s = state(10, version=3)
    s.place_hold("o1:l1", "wh-1", 4, 100.0, 110.0)
    read(s, 6, 4)  # commercetools shows the order: version moved, 10 -> 6
    assert s.availability() == 2  # read before the hold ended: counted twice (safe side)
    ended = s.on_read(110.5, DELAY)
    assert (ended.settled, ended.expired) == (1, 0)
    assert s.availability() == 6 and not s.orders
    assert s.reread_at is None
    # the order message redelivered after settlement holds nothing
    assert not s.place_hold("o1:l1", "wh-1", 4, 200.0, 210.0)


def test_a_read_before_the_delay_keeps_the_hold_and_asks_again() -> None:
    s = state(10)
    s.place_hold("o1:l1", "wh-1", 4, 100.0, 110.0)
    ended = s.on_read(105.0, DELAY)
    assert (ended.settled, ended.expired) == (0, 0)
    assert s.availability() == 6
    assert s.reread_at == 110.0


def test_a_hold_the_entry_never_shows_expires_on_the_read() -> None:
    s = state(10, version=3)
    s.place_hold("o1:l1", "wh-1", 4, 100.0, 110.0)
    read(s, 10, 3)  # same version: the order took nothing (failed, or mode None after all)
    ended = s.on_read(111.0, DELAY)
    assert (ended.settled, ended.expired) == (0, 1)
    assert s.availability() == 10


def test_a_partial_read_ends_only_holds_on_the_channels_it_read() -> None:
    s = state(10)
    s.apply(StockObservation("SKU-1", "wh-2", "e-2", 1, "set", 5, 5))
    s.place_hold("o1:l1", "wh-1", 1, 100.0, 110.0)
    s.place_hold("o1:l2", "wh-2", 1, 100.0, 110.0)
    s.apply(StockObservation("SKU-1", "wh-2", "e-2", 2, "set", 4, 4))
    ended = s.on_read(120.0, DELAY, ["wh-2"])
    assert (ended.settled, ended.expired) == (1, 0)
    assert list(s.orders.open) == ["o1:l1"]
    assert s.reread_at == 110.0  # the sweep's partial read does not satisfy the re-read


def test_holds_expire_after_the_ttl_when_no_read_ends_them() -> None:
    s = state(10)
    s.place_hold("o1:l1", "wh-1", 4, 100.0, 110.0)
    assert s.orders.expire(100.0 + 1799, 1800) == 0
    assert s.orders.expire(100.0 + 1800, 1800) == 1
    assert s.availability() == 10


def test_holds_on_channels_not_serving_amazon_do_not_change_amazons_figure() -> None:
    s = state(10)
    s.apply(StockObservation("SKU-1", "store-1", "e-9", 1, "set", 5, 5))
    chans = ("wh-1",)
    assert s.availability(chans) == 10
    s.place_hold("o1:l1", "store-1", 5, 100.0, 110.0)
    assert s.availability(chans) == 10


def test_holds_survive_the_stored_state_and_mark_it_for_the_restart_scan() -> None:
    s = state(10)
    s.changed_at = None
    assert stored_clean(dumps(s.to_dict()))
    s.place_hold("o1:l1", "wh-1", 4, 100.0, 110.0, at=99.5)
    s.changed_at = None
    raw = dumps(s.to_dict())
    assert not stored_clean(raw)  # open holds: the restart scan must decode it
    back = SkuState.from_dict(loads(raw))
    assert back.availability() == 6 and back.reread_at == 110.0 and back.order_at == 99.5
    back.on_read(111.0, DELAY)
    back.changed_at = None
    raw2 = dumps(back.to_dict())
    assert stored_clean(raw2)
    # ended keys are kept: a redelivery after a restart does not hold again
    assert not SkuState.from_dict(loads(raw2)).place_hold("o1:l1", "wh-1", 4, 300.0, 310.0)


def test_read_bundles_close_each_sku_with_a_read_item() -> None:
    entries = [
        {"id": "e-1", "version": 4, "sku": "A", "availableQuantity": 1, "quantityOnStock": 1,
         "supplyChannel": {"typeId": "channel", "id": "wh-1"}},
        {"id": "bad", "version": 1, "sku": "B"},  # unusable: skipped, the rest flows
    ]  # fmt: skip
    full = read_bundles(entries, 50.0, "reread", ["A", "B", "C"])
    assert [i["t"] for i in full["A"]] == ["obs", "read"]
    read = {"t": "read", "ra": 50.0, "src": "reread", "chs": None}
    assert full["A"][-1] == {**read, "sku": "A", "none": False}
    assert full["C"] == [{**read, "sku": "C", "none": True}]
    partial = read_bundles(entries, 50.0, "sweep")
    assert list(partial) == ["A"] and partial["A"][-1]["chs"] == ["wh-1"]
    assert partial["A"][0]["src"] == "sweep"


def test_a_read_that_finds_no_entry_ends_no_hold_of_a_sku_with_entries() -> None:
    s = state(10)
    s.place_hold("o1:l1", "wh-1", 4, 100.0, 110.0)
    ended = s.on_read(111.0, DELAY, None, empty=True)  # e.g. a query that matched nothing
    assert (ended.settled, ended.expired) == (0, 0) and s.availability() == 6
    assert s.reread_at == 111.0 + DELAY  # asked again later, not in a loop
    bare = SkuState("SKU-2")  # no entry known: the order could not have taken stock
    bare.place_hold("o2:l1", "wh-1", 1, 100.0, 110.0)
    assert bare.on_read(111.0, DELAY, None, empty=True).expired == 1


def test_sweep_reads_mark_changes_younger_than_the_grace() -> None:
    def entry(i: int, at: str) -> dict[str, object]:
        return {"id": f"e-{i}", "version": 2, "sku": f"S{i}", "availableQuantity": 1,
                "quantityOnStock": 1, "lastModifiedAt": at}  # fmt: skip

    t = 1_765_000_000.0  # 2025-12-06T05:46:40Z
    old, young = entry(1, "2025-12-06T05:46:30.000Z"), entry(2, "2025-12-06T05:46:45.000Z")
    got = read_bundles([old, young], t + 10, "sweep", young_after=t)
    assert "y" not in got["S1"][0] and got["S2"][0]["y"] is True

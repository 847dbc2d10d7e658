"""The DF order poller's rules without Kafka or HTTP: windows, statuses, paging, the cursor,
what a restart remembers, and the ship-to address that never leaves in clear."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from streams.adapters.codecs import loads
from streams.adapters.spapi.df_orders import DfOrdersPage
from streams.agents.df_poller import (
    DfPollCore,
    DfPollState,
    Records,
    address_hash,
    redact_ship_to,
)
from streams.config import Settings
from streams.sandbox.amazon.df_generator import DfOrderGenerator

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class FakeDfApi:
    """Serves ``orders`` like getOrders: filters, ascending, pages of ``limit``; the token
    is the offset. ``fail_after`` pages it raises (an outage mid-poll)."""

    def __init__(self, orders: list[dict[str, Any]]) -> None:
        self.orders = orders
        self.queries: list[dict[str, str]] = []
        self.fail_after: int | None = None

    async def df_get_orders_page(
        self, params: dict[str, str], next_token: str | None = None
    ) -> DfOrdersPage:
        if self.fail_after is not None and len(self.queries) >= self.fail_after:
            raise ConnectionError("SP-API unreachable")
        self.queries.append({**params, **({"nextToken": next_token} if next_token else {})})
        after = datetime.fromisoformat(params["createdAfter"])
        before = datetime.fromisoformat(params["createdBefore"])
        hits = sorted(
            (
                o
                for o in self.orders
                if after <= datetime.fromisoformat(o["orderDetails"]["orderDate"]) < before
                and params.get("status") in (None, o["orderDetails"]["orderStatus"])
                and o["orderDetails"]["shipFromParty"]["partyId"] == params["shipFromPartyId"]
            ),
            key=lambda o: o["orderDetails"]["orderDate"],
        )
        start, limit = int(next_token or 0), int(params["limit"])
        more = start + limit < len(hits)
        return DfOrdersPage(hits[start : start + limit], str(start + limit) if more else None)


class Rig:
    def __init__(self, orders: list[dict[str, Any]], **settings: Any) -> None:
        self.api = FakeDfApi(orders)
        self.now = NOW.timestamp()
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.saved: Records = []
        self.settings = Settings(df_enabled=True, **settings)

    def core(self) -> DfPollCore:
        return DfPollCore(self.settings, lambda: self.api, self._publish, self._save,
                          clock=lambda: self.now)  # fmt: skip

    async def _publish(self, number: str, order: dict[str, Any]) -> None:
        self.published.append((number, order))

    async def _save(self, records: Records) -> None:
        self.saved.extend(records)

    def restored(self) -> DfPollState:
        """The state a restarted poller reads back from the topic."""
        state = DfPollState()
        for key, value in self.saved:
            state.apply(key, value)
        return state


def orders(count: int, *, hours: float = 12, warehouse: str = "WH1", seed: int = 1,
           status: str = "NEW") -> list[dict[str, Any]]:  # fmt: skip
    gen = DfOrderGenerator(seed=seed, warehouses=(warehouse,), now=NOW,
                           spread=timedelta(hours=hours))  # fmt: skip
    out = gen.orders(count)
    for o in out:
        o["orderDetails"]["orderStatus"] = status
    return out


async def test_new_and_accepted_orders_are_pulled_across_pages_once() -> None:
    given = (
        orders(230) + orders(20, seed=2, status="ACCEPTED") + orders(5, seed=3, status="SHIPPED")
    )
    r = Rig(given)
    published = await r.core().poll_once(DfPollState())
    numbers = [n for n, _ in r.published]
    assert published == 250 and len(set(numbers)) == 250
    # one query over every status (a per-status query pages over a set that shrinks as the
    # worker acknowledges), SHIPPED ones not published
    assert [q.get("status") for q in r.api.queries] == [None, None, None, "CANCELLED"]
    assert all(q["limit"] == "100" and q["sortOrder"] == "ASC" for q in r.api.queries)


async def test_orders_acknowledged_while_paging_not_missed_cancellations_republished() -> None:
    given = orders(230)
    r = Rig(given)
    api_page = r.api.df_get_orders_page

    async def acknowledging(params: dict[str, str], next_token: str | None = None) -> Any:
        page = await api_page(params, next_token)
        for o in page.orders:  # the worker acknowledges what it was sent meanwhile
            if o["orderDetails"]["orderStatus"] == "NEW":
                o["orderDetails"]["orderStatus"] = "ACCEPTED"
        return page

    r.api.df_get_orders_page = acknowledging  # type: ignore[method-assign]
    state = DfPollState()
    assert await r.core().poll_once(state) == 230
    given[7]["orderDetails"]["orderStatus"] = "CANCELLED"
    r.now += 60
    assert await r.core().poll_once(r.restored()) == 1  # the cancellation, once
    assert r.published[-1][0] == given[7]["purchaseOrderNumber"]
    r.now += 60
    assert await r.core().poll_once(r.restored()) == 0


async def test_a_restart_resumes_from_the_saved_cursor_and_publishes_nothing_twice() -> None:
    r = Rig(orders(120))
    await r.core().poll_once(DfPollState())
    r.api.orders += orders(30, hours=0.5, seed=9)  # created since: some inside the overlap
    r.now += 600
    state = r.restored()
    assert state.cursors["WH1"] == NOW
    await r.core().poll_once(state)
    numbers = [n for n, _ in r.published]
    assert len(numbers) == len(set(numbers)) == 150
    # the second poll reached back one overlap (an hour) before the cursor, no further
    second = [q for q in r.api.queries if datetime.fromisoformat(q["createdBefore"]) > NOW
              and "status" not in q]  # fmt: skip
    assert {q["createdAfter"] for q in second} == {"2026-12-06T11:00:00Z"}


async def test_an_outage_mid_poll_keeps_the_cursor_and_loses_nothing() -> None:
    r = Rig(orders(250))
    r.api.fail_after = 2  # two pages of NEW, then SP-API is gone
    try:
        await r.core().poll_once(DfPollState())
    except ConnectionError:
        pass
    assert len(r.published) == 200
    state = r.restored()
    assert "WH1" not in state.cursors  # the window was not finished
    assert len(state.seen) == 200  # but what went out is remembered, page by page
    r.api.fail_after = None
    await r.core().poll_once(state)
    numbers = [n for n, _ in r.published]
    assert len(numbers) == len(set(numbers)) == 250


async def test_a_long_gap_is_fetched_in_windows_of_at_most_seven_days() -> None:
    r = Rig(orders(10, hours=24 * 9), df_initial_lookback_s=7 * 24 * 3600.0)
    state = DfPollState()
    state.cursors["WH1"] = NOW - timedelta(days=10)
    r.now = NOW.timestamp()
    await r.core().poll_once(state)
    spans = {(q["createdAfter"], q["createdBefore"]) for q in r.api.queries if "status" not in q}
    for after, before in spans:
        width = datetime.fromisoformat(before) - datetime.fromisoformat(after)
        assert width <= timedelta(days=7)
    assert len(spans) == 2 and len(r.published) == 10
    assert state.cursors["WH1"] == NOW


async def test_each_warehouse_is_polled_with_its_own_cursor() -> None:
    r = Rig(orders(5, warehouse="WH1") + orders(7, warehouse="WH2", seed=4),
            df_ship_from_party_ids=("WH1", "WH2"))  # fmt: skip
    await r.core().poll_once(DfPollState())
    assert len(r.published) == 12
    assert {q["shipFromPartyId"] for q in r.api.queries} == {"WH1", "WH2"}
    assert set(r.restored().cursors) == {"WH1", "WH2"}


async def test_no_address_is_published_in_clear() -> None:
    given = orders(40)
    r = Rig(given)
    await r.core().poll_once(DfPollState())
    text = b"".join(orjson.dumps(o) for _, o in r.published) + b"".join(
        k + (v or b"") for k, v in r.saved
    )
    for o in given:
        address = o["orderDetails"]["shipToParty"]
        for field in ("name", "addressLine1", "phone"):
            assert address[field].encode() not in text
    for _, o in r.published:
        ship_to = o["orderDetails"]["shipToParty"]
        assert set(ship_to) == {"addressHash", "countryCode"} and len(ship_to["addressHash"]) == 64
    assert all(loads(v) for k, v in r.saved if v is not None)


def test_the_address_hash_ignores_case_and_spacing_but_not_the_address() -> None:
    a = {"name": "Maria Garcia", "addressLine1": "12 Oak Street", "city": "Austin",
         "stateOrRegion": "TX", "postalCode": "78701", "countryCode": "US"}  # fmt: skip
    same = {**a, "name": "  MARIA   garcia ", "addressLine1": "12 oak street"}
    assert address_hash(a) == address_hash(same)
    assert address_hash(a) != address_hash({**a, "addressLine1": "13 Oak Street"})
    assert address_hash(a) != address_hash({**a, "addressLine2": "Apt 5"})


def test_redaction_copies_the_order_and_keeps_everything_else() -> None:
    [order] = orders(1)
    before = orjson.dumps(order)
    out = redact_ship_to(order)
    assert orjson.dumps(order) == before  # the input is untouched
    assert out["orderDetails"]["shipToParty"]["countryCode"] == "US"
    rest = {k: v for k, v in out["orderDetails"].items() if k != "shipToParty"}
    assert rest == {k: v for k, v in order["orderDetails"].items() if k != "shipToParty"}
    assert redact_ship_to({"purchaseOrderNumber": "X1"}) == {"purchaseOrderNumber": "X1"}


def test_seen_orders_are_forgotten_after_two_weeks() -> None:
    state = DfPollState()
    state.mark("OLD1", NOW.timestamp() - 15 * 86400)
    state.mark("NEW1", NOW.timestamp())
    assert state.expire(NOW.timestamp() - 14 * 86400) == [(b"seen:OLD1", None)]
    assert set(state.seen) == {"NEW1"}


def test_warehouses_come_as_a_comma_list_or_json_and_default_to_the_df_warehouse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for value in ("WH1, WH2", '["WH1", "WH2"]'):
        monkeypatch.setenv("STREAMS_DF_SHIP_FROM_PARTY_IDS", value)
        assert Settings().df_warehouses == ("WH1", "WH2")
    monkeypatch.delenv("STREAMS_DF_SHIP_FROM_PARTY_IDS")
    monkeypatch.setenv("STREAMS_SPAPI_DF_WAREHOUSE", "WH9")
    assert Settings().df_warehouses == ("WH9",)
    assert Settings().df_enabled is False  # a retail-only vendor does not poll DF


def test_the_topic_exists_only_for_df_vendors_with_its_dlq_and_co_partitioned() -> None:
    from streams.topics import topic_specs

    retail = {t.name for t in topic_specs(Settings())}
    assert "amazon.df-orders" not in retail
    specs = {t.name: t for t in topic_specs(Settings(df_enabled=True, partitions=6))}
    assert specs["amazon.df-orders"].partitions == 6 and specs["amazon.df-orders"].copartitioned
    assert "amazon.df-orders.dlq" in specs


def test_the_topic_schema_takes_redacted_orders_and_refuses_an_address_in_clear() -> None:
    from pathlib import Path

    from jsonschema import Draft202012Validator

    path = Path(__file__).resolve().parents[2] / "schemas" / "amazon.df-orders.schema.json"
    v = Draft202012Validator(orjson.loads(path.read_bytes()))
    for o in orders(20):
        assert list(v.iter_errors(redact_ship_to(o))) == []
        assert list(v.iter_errors(o)) != []  # Amazon's order as is: the address in clear

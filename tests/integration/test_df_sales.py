"""The commercetools order for finance of a DF order (``AMZDF-<PO>``), written by the
sales-order writer against the commercetools emulator (over HTTP): created once an accepted
order's acknowledgement is taken, unchanged on redelivery, Cancelled when Amazon cancels."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.agents.df_sales import DfSales
from streams.agents.sales_order_writer import SalesOrderClient
from streams.config import Settings
from streams.domain import df_book
from streams.domain.df_orders import redact
from tests.unit.test_df_orders import ctx, decided, df_order

pytestmark = [pytest.mark.ctmock]


class Reports:
    def __init__(self) -> None:
        self.raised: list[tuple[str, str]] = []

    async def send(self, kind: str, refs: Any, cause: str) -> None:
        self.raised.append((kind, cause))


def sales(s: Settings, table: dict[bytes, bytes]) -> DfSales:
    d = DfSales.__new__(DfSales)  # no Faust app: the table is a dict, commercetools is real
    d.settings, d.df_orders, d.reports = s, table, Reports()  # type: ignore[assignment]
    from streams.agents.clients import LazyClient

    d.ct = LazyClient(None, lambda: SalesOrderClient(s))
    d._writer = None
    return d


async def test_an_accepted_df_order_becomes_one_commercetools_order(
    ct_api: str, tmp_path: Path
) -> None:
    s = Settings(
        ct_api_url=ct_api, ct_auth_url=ct_api, ct_project_key=f"dfs-{uuid.uuid4().hex[:10]}",
        data_dir=tmp_path,
    )  # fmt: skip
    rec, _ = df_book.apply(None, {"t": "order", "raw": redact(df_order())}, ctx())
    assert rec is not None
    _, eff = df_book.apply(rec, {"t": "decisions", "ds": decided(rec, {"SKU-1": 5})}, ctx())
    table = {b"DF1": orjson.dumps(rec.to_json())}
    d = sales(s, table)
    try:
        assert await d.sync(b"DF1") is None  # not acknowledged yet: no order
        msg = {"t": "submitted", "kind": "ack", "hash": eff.outbox[0]["hash"], "txid": "T",
               "at": 1.0}  # fmt: skip
        _, eff = df_book.apply(rec, msg, ctx())
        assert eff.sales
        table[b"DF1"] = orjson.dumps(rec.to_json())
        assert await d.sync(b"DF1") == "created"
        assert await d.sync(b"DF1") == "unchanged"  # a redelivery
        async with SalesOrderClient(s) as ct:
            found = await ct.query_orders("orderNumber = :n", {"n": "AMZDF-DF1"})
            assert len(found) == 1
            [line] = found[0]["customLineItems"]
            assert (line["name"]["en"], line["quantity"]) == ("SKU-1", 2)
            assert found[0]["custom"]["fields"]["amazonPurchaseOrderNumber"] == "DF1"
        cancelled = redact(df_order())
        cancelled["orderDetails"]["orderStatus"] = "CANCELLED"
        _, eff = df_book.apply(rec, {"t": "order", "raw": cancelled}, ctx())
        assert eff.sales
        table[b"DF1"] = orjson.dumps(rec.to_json())
        await d.sync(b"DF1")
        async with SalesOrderClient(s) as ct:
            order = await ct.get_order_by_number("AMZDF-DF1")
            assert order is not None and order["orderState"] == "Cancelled"
        assert d.reports.raised == []  # type: ignore[attr-defined]
    finally:
        await d.ct.close()

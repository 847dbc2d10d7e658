"""The composition root (``create_app``) builds the flows it is asked for, hands each the
collaborators it needs, and fails outright when a flow's module cannot be imported (it once
skipped such a flow silently). The app is built, not started: no broker is needed."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from streams.app import ALL_FLOWS, Flows, create_app
from streams.config import Settings
from streams.domain.availability import offered
from streams.domain.ctmessages import StockObservation
from streams.domain.inventory import SkuState
from streams.domain.mapping import Money, SkuMapping
from streams.domain.warehouse_policy import ChannelPolicy, ChannelRule


def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, sales_orders_enabled=True, channel_policy_enabled=True,
                    inventory_sender_enabled=True, df_enabled=True,
                    invoices_enabled=True)  # fmt: skip


def test_every_flow_named_runs_and_is_wired_to_the_others(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path))
    f = app.flows
    assert {name for name in ALL_FLOWS if getattr(f, name) is None} == set()
    assert f.ops is not None and f.purchase_orders is not None and f.asn is not None
    assert f.ops.skus is f.inventory.skus
    assert f.ops.products is f.inventory.products
    assert f.ops.pos is f.purchase_orders.pos
    assert f.ops.shipments is f.asn.shipments
    assert f.invoices is not None and f.invoices.asn_flow is f.asn
    assert f.asn.on_accepted == [f.invoices.shipment_accepted]
    assert f.inventory.lag is f.lag_monitor
    assert f.inventory.decisions_topic is f.purchase_orders.events_topic
    assert f.df_orders is not None and f.asn.df_flow is f.df_orders
    assert f.inventory.df_decisions == f.df_orders.decisions_record
    assert f.df_orders.on_confirmed == [f.invoices.df_shipment_confirmed]


def test_flows_not_named_do_not_run_and_ops_reads_none_of_them(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path), flows=("ops",))
    f = app.flows
    assert f == Flows(inventory=f.inventory, lag_monitor=f.lag_monitor, ops=f.ops)
    assert f.ops is not None and f.ops.pos is None and f.ops.shipments is None


def test_a_retail_only_vendor_does_not_poll_df_orders(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path).model_copy(update={"df_enabled": False}))
    assert app.flows.df_poller is None and app.flows.po_poller is not None


def test_an_unknown_flow_name_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown flows"):
        create_app(settings(tmp_path), flows=("inventory", "asm"))


def test_ops_judges_by_the_warehouse_policy_the_inventory_flow_publishes_by(
    tmp_path: Path,
) -> None:
    app = create_app(settings(tmp_path))
    inventory, ops = app.flows.inventory, app.flows.ops
    assert ops is not None
    cost = Money(amount=Decimal("1"), currencyCode="USD")
    s = SkuState("S", mapping=SkuMapping(sku="S", asin="B000000001", netCost=cost))
    s.apply(StockObservation("S", "A", "e-A", 1, "set", available=10, on_stock=10, msg_id="m"))
    policy = ChannelPolicy({"A": ChannelRule("A", "a", True, None, 4)})
    assert ops.offered(s) == 10
    inventory.channel_policy = lambda: policy  # what the channel-policy flow does
    assert ops.offered(s) == offered(s, inventory.defaults, policy) == 6


BROKEN_FLOW = """
import importlib.abc, sys

class Broken(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "streams.agents.asn":
            raise ImportError("a dependency of the ASN flow is missing")

sys.meta_path.insert(0, Broken())
from streams.app import create_app
print("started without the ASN flow")
"""


def test_a_flow_that_fails_to_import_fails_the_start() -> None:
    r = subprocess.run(
        [sys.executable, "-c", BROKEN_FLOW], capture_output=True, text=True, timeout=60
    )
    assert r.returncode != 0 and "started" not in r.stdout
    assert "ImportError: a dependency of the ASN flow is missing" in r.stderr


def test_the_advertised_host_is_the_canonical_url_and_the_bind_stays(tmp_path: Path) -> None:
    # a StatefulSet pod: binds all interfaces, is reached at its headless-Service name
    s = Settings(data_dir=tmp_path, web_host="0.0.0.0", web_port=6066,
                 web_advertised_host="vc-ct-streams-0.vc-ct-streams-headless.ns.svc")  # fmt: skip
    app = create_app(s)
    host = "vc-ct-streams-0.vc-ct-streams-headless.ns.svc"
    assert str(app.conf.canonical_url) == f"http://{host}:6066"
    assert app.conf.web_bind == "0.0.0.0"
    plain = create_app(Settings(data_dir=tmp_path / "p", web_host="127.0.0.1"))
    assert str(plain.conf.canonical_url) == "http://127.0.0.1:6066"


def test_the_worker_starts_its_tables_without_waiting_for_late_ones(tmp_path: Path) -> None:
    """Every table is declared by create_app, before the worker starts: the table manager
    registers them at once instead of after Faust's one-second wait for late ones."""
    from streams.runtime.tablemanager import PromptTableManager

    app = create_app(settings(tmp_path))
    assert isinstance(app.tables, PromptTableManager)
    assert {"skus", "products", "pos", "shipments"} <= set(app.tables)

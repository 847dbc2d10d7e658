"""``streams resync commercetools`` against a real worker's state (its changelog on real Kafka)
and the commercetools emulator over HTTP: find what differs, publish repairs, converge."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from streams.adapters.commercetools import CommercetoolsClient
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from streams.domain.ctmessages import StockObservation
from streams.domain.inventory import SkuState
from streams.resync import Reconciler, changelog_topic, compare_entry, resync, run_resync
from tests.support.kafka import produce, unique_settings, wait_for
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

AT = "2026-11-27T08:00:00.000Z"


def created(entry: dict[str, Any], version: int, on_stock: int) -> dict[str, Any]:
    """An InventoryEntryCreated message as commercetools would deliver it."""
    body = {
        "id": entry["id"],
        "version": version,
        "sku": entry["sku"],
        "quantityOnStock": on_stock,
        "availableQuantity": on_stock,
        "createdAt": AT,
        "lastModifiedAt": AT,
    }
    if entry.get("supplyChannel"):
        body["supplyChannel"] = entry["supplyChannel"]
    return {
        "notificationType": "Message",
        "projectKey": "p",
        "id": f"{entry['id']}-created",
        "version": 1,
        "sequenceNumber": 1,
        "resource": {"typeId": "inventory-entry", "id": entry["id"]},
        "resourceVersion": version,
        "type": "InventoryEntryCreated",
        "inventoryEntry": body,
        "createdAt": AT,
        "lastModifiedAt": AT,
    }


@pytest.fixture
def rs_settings(kafka: str, ct_api: str, tmp_path: Path) -> Settings:
    s = unique_settings(
        kafka,
        tmp_path,
        web_port=free_port(),
        ct_api_url=ct_api,
        ct_auth_url=ct_api,
        ct_project_key=f"resync-{uuid.uuid4().hex[:10]}",
    )
    asyncio.run(create_topics(s))
    return s


async def seed(s: Settings) -> dict[str, dict[str, Any]]:
    async with CommercetoolsClient(s) as ct:
        wh1 = (await ct.create_channel({"key": "wh-1", "roles": ["InventorySupply"]}))["id"]
        wh2 = (await ct.create_channel({"key": "wh-2", "roles": ["InventorySupply"]}))["id"]
        out: dict[str, dict[str, Any]] = {}
        for name, sku, ch, qty in (
            ("1a", "SKU-1", wh1, 10),
            ("1b", "SKU-1", wh2, 20),
            ("2", "SKU-2", wh1, 30),
            ("3", "SKU-3", None, 40),
            ("4", "SKU-4", wh1, 50),
        ):
            draft: dict[str, Any] = {"sku": sku, "quantityOnStock": qty}
            if ch:
                draft["supplyChannel"] = {"typeId": "channel", "id": ch}
            out[name] = await ct.create_inventory_entry(draft)
        # changed in commercetools after the worker last heard of them (a lost notification)
        for name, qty in (("1b", 17), ("4", 44)):
            e = out[name]
            await ct.update_inventory(
                e["id"], e["version"], [{"action": "changeQuantity", "quantity": qty}]
            )
        return out


@pytest.mark.kafka
@pytest.mark.ctmock
def test_resync_finds_and_repairs_what_the_state_has_wrong(
    rs_settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "220")  # rich: one table row per line
    s = rs_settings
    bs = s.kafka_bootstrap
    e = asyncio.run(seed(s))
    ghost = {"id": "ghost-entry-5", "sku": "SKU-5"}  # deleted while nobody listened
    asyncio.run(
        produce(
            bs,
            s.topic_ct_messages,
            [
                (b"ct", created(e["1a"], 1, 10)),  # right
                (b"ct", created(e["1b"], 1, 20)),  # old: commercetools has 17 at v2
                (b"ct", created(e["3"], 1, 40)),  # right
                (b"ct", created(e["4"], 1, 50)),  # old: 44 at v2
                (b"ct", created(ghost, 3, 9)),  # gone from commercetools
                # SKU-2: never heard of
            ],
        )
    )
    w = WorkerProcess(s, tmp_path / "worker.log").start()
    try:
        w.wait_ready()
        skus = {b"SKU-1", b"SKU-3", b"SKU-4", b"SKU-5"}
        asyncio.run(wait_for(bs, changelog_topic(s), lambda r: skus <= {x.key for x in r}, 30))

        capsys.readouterr()
        assert run_resync(s, apply=False) == 1
        shown = capsys.readouterr().out
        rows = {ln.split("│")[1].strip() for ln in shown.splitlines() if ln.startswith("│ SKU")}
        assert rows == {"SKU-1", "SKU-2", "SKU-4", "SKU-5"}, shown
        assert "5 inventory entries in commercetools, 4 SKUs in the worker state: 4 differ" in shown
        assert "missing in state" in shown and "missing in commercetools" in shown
        report = asyncio.run(resync(s, apply=False))
        got = {(d.sku, d.entry_id, d.ct_available, d.state_available) for d in report.differences}
        assert got == {
            ("SKU-1", e["1b"]["id"], 17, 20),
            ("SKU-2", e["2"]["id"], 30, None),
            ("SKU-4", e["4"]["id"], 44, 50),
            ("SKU-5", "ghost-entry-5", None, 9),
        }

        assert run_resync(s, apply=True) == 0
        assert f"published 4 change notifications to {s.topic_ct_messages}" in (
            capsys.readouterr().out
        )
        # the worker reads the entries the notifications name and repairs its state
        deadline = 30.0
        while deadline > 0 and asyncio.run(resync(s, apply=False)).differences:
            asyncio.run(asyncio.sleep(0.5))
            deadline -= 0.5
        capsys.readouterr()
        assert run_resync(s, apply=False) == 0, w.tail()
        assert "5 SKUs in the worker state: 0 differ" in capsys.readouterr().out
        assert 'streams_ct_entry_fetches_total{result="ok"} 3.0' in w.metrics()
    finally:
        w.stop()


def test_a_state_ahead_of_commercetools_is_not_repairable() -> None:
    state = SkuState("S")
    state.apply(StockObservation("S", "ch", "e1", 7, "set", available=5, on_stock=5))
    entry = {
        "id": "e1",
        "sku": "S",
        "version": 6,
        "quantityOnStock": 4,
        "availableQuantity": 4,
        "supplyChannel": {"typeId": "channel", "id": "ch"},
    }
    d = compare_entry(entry, state)
    assert d is not None and not d.repairable
    assert compare_entry({**entry, "quantityOnStock": 5, "availableQuantity": 5}, state) is None
    newer = compare_entry({**entry, "version": 8}, state)
    assert newer is not None and newer.repairable and newer.reason == "quantity differs"


@pytest.mark.ctmock
async def test_periodic_reconcile_walks_the_entries_in_slices(ct_api: str) -> None:
    s = Settings(
        ct_api_url=ct_api,
        ct_auth_url=ct_api,
        ct_project_key=f"recon-{uuid.uuid4().hex[:10]}",
        reconcile_batch=3,
    )
    async with CommercetoolsClient(s) as ct:
        entries = [
            await ct.create_inventory_entry({"sku": f"SKU-{i}", "quantityOnStock": i})
            for i in range(7)
        ]
        states: dict[str, SkuState] = {}
        for en in entries[:4]:  # the worker knows four, one of them wrongly
            st = SkuState(en["sku"])
            q = en["quantityOnStock"] + (1 if en["sku"] == "SKU-2" else 0)
            st.apply(StockObservation(en["sku"], "", en["id"], 0, "set", available=q, on_stock=q))
            states[en["sku"]] = st
        sent: list[tuple[bytes, bytes]] = []

        async def publish(key: bytes, value: bytes) -> None:
            sent.append((key, value))

        rec = Reconciler(s, client=ct)
        reports = []
        for _ in range(5):  # one round: until a slice reaches the end
            reports.append(await rec.tick(states.get, lambda sku: sku != "SKU-6", publish))
            if reports[-1].wrapped:
                break
        first_round = [k.decode() for k, _ in sent]
        again = await rec.tick(states.get, lambda sku: sku != "SKU-6", publish)
    assert len(reports) == 3 and [r.wrapped for r in reports] == [False, False, True]
    assert sum(r.checked for r in reports) == 6  # 7 entries, SKU-6 is another worker's
    # SKU-2 shows a wrong figure, SKU-4 and SKU-5 are unknown to the state
    assert sorted(first_round) == ["SKU-2", "SKU-4", "SKU-5"]
    assert again.checked > 0 and not again.wrapped  # the next round starts over

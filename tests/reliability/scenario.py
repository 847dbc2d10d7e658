"""A mixed, seeded workload for crash and soak runs: stock changes written to the commercetools
emulator and delivered on ``ct.messages`` as its subscription would, master-data changes, and
purchase orders served by the SP-API sandbox (the worker's poller takes them in).

Stock is changed the way the storefront / ERP does it: a versioned update of the entry
(re-decided on a 409, since the worker's command flow writes the same entries), then the
message with the version and quantities commercetools answered. ``base`` tracks what the
test set, without the worker's reservations, for the invariant checker.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from streams.adapters.commercetools import CommercetoolsClient
from streams.config import Settings
from streams.sandbox.amazon import SandboxControl, running_sandbox
from tests.reliability.harness import health, sandbox_port, scrape, wait_drained, workload_sandbox
from tests.support.badinput import (
    ct_message,
    dispatch_record,
    gs1_check,
    po_item,
    purchase_order,
    sku_mapping,
)
from tests.support.invariants import Report, check, collect
from tests.support.kafka import produce, read_all, wait_for
from tests.support.worker import WorkerProcess

CHANNELS = ("crash-a", "crash-b", "crash-c")  # keys; c never serves Amazon


class Scenario:
    def __init__(self, s: Settings, sandbox_url: str, seed: int, skus: int = 8) -> None:
        self.s = s
        self.sandbox_url = sandbox_url
        self.rng = random.Random(seed)
        self.skus = [f"CR-{i:02d}" for i in range(skus)]
        self.channel: dict[str, str] = {}  # key -> id
        self.entries: dict[tuple[str, str], str] = {}  # (sku, channel id) -> entry id
        self.base: dict[tuple[str, str], int] = {}  # quantityOnStock the test set
        self.po_numbers: list[str] = []
        self.dispatched: dict[str, str] = {}  # PO -> shipment id (only POs with goods)
        self.nothing_to_ship: set[str] = set()  # acknowledged POs with no Accepted line
        self.counts: Counter[str] = Counter()
        self.ct = CommercetoolsClient(s)

    def asin(self, sku: str) -> str:
        return f"B0CRASH{sku[-2:]}0"[:10]

    async def close(self) -> None:
        await self.ct.close()

    async def setup(self) -> None:
        for key in CHANNELS:
            ch = await self.ct.create_channel({"key": key, "roles": ["InventorySupply"]})
            self.channel[key] = str(ch["id"])
        eligible = [self.channel["crash-a"], self.channel["crash-b"]]
        await produce(
            self.s.kafka_bootstrap,
            self.s.topic_sku_mappings,
            [(sku.encode(), self.mapping(sku, eligible, 0)) for sku in self.skus],
        )
        messages = []
        for sku in self.skus:
            for key in CHANNELS:
                qty = self.rng.randrange(50, 300)
                ch = self.channel[key]
                entry = await self.ct.create_inventory_entry(
                    {"sku": sku, "quantityOnStock": qty,
                     "supplyChannel": {"typeId": "channel", "id": ch}}
                )  # fmt: skip
                self.entries[(sku, ch)] = str(entry["id"])
                self.base[(sku, ch)] = qty
                messages.append((b"ct", self.message(entry)))
        await produce(self.s.kafka_bootstrap, self.s.topic_ct_messages, messages)
        self.counts["stock messages"] += len(messages)
        self.counts["mappings"] += len(self.skus)

    def mapping(self, sku: str, channels: list[str], buffer: int) -> dict[str, Any]:
        m = sku_mapping(sku, self.asin(sku), channels, safetyBuffer=buffer)
        m["vendorProductIdentifier"] = f"V{self.asin(sku)}"
        if int(sku[-2:]) % 2:
            m["unitsPerCase"] = 6  # odd SKUs are ordered in cases
        return m

    def message(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The InventoryEntryQuantitySet commercetools would deliver for ``entry``."""
        return ct_message(
            str(entry["id"]),
            str(entry["sku"]),
            str(entry["supplyChannel"]["id"]),
            int(entry["version"]),
            int(entry["availableQuantity"]),
            int(entry["quantityOnStock"]),
            msg_id=f"{entry['id']}-v{entry['version']}",
        )

    async def change_stock(self, sku: str, ch: str, delta: int) -> dict[str, Any]:
        entry_id = self.entries[(sku, ch)]
        current = await self.ct.get_inventory_entry(entry_id)
        assert current is not None

        def decide(fresh: dict[str, Any]) -> list[dict[str, Any]]:
            return [{"action": "changeQuantity", "quantity": int(fresh["quantityOnStock"]) + delta}]

        updated = await self.ct.update_inventory(
            entry_id, int(current["version"]), decide(current), decide=decide
        )
        self.base[(sku, ch)] += delta
        return updated

    async def step(self) -> None:
        """One burst of traffic: stock changes, maybe a master-data change, maybe POs."""
        rng = self.rng
        messages = []
        for _ in range(rng.randrange(5, 15)):
            sku = rng.choice(self.skus)
            ch = self.channel[rng.choice(CHANNELS)]
            delta = rng.randrange(-20, 40)
            if self.base[(sku, ch)] + delta < 0:
                delta = -self.base[(sku, ch)]
            messages.append((b"ct", self.message(await self.change_stock(sku, ch, delta))))
        if rng.random() < 0.5 and messages:
            messages.append(messages[rng.randrange(len(messages))])  # a redelivery
        await produce(self.s.kafka_bootstrap, self.s.topic_ct_messages, messages)
        self.counts["stock messages"] += len(messages)
        if rng.random() < 0.4:
            sku = rng.choice(self.skus)
            eligible = [self.channel["crash-a"], self.channel["crash-b"]]
            m = self.mapping(sku, eligible, rng.randrange(0, 10))
            await produce(self.s.kafka_bootstrap, self.s.topic_sku_mappings, [(sku.encode(), m)])
            self.counts["mapping changes"] += 1
        orders = [self.order() for _ in range(rng.randrange(1, 4))]
        async with aiohttp.ClientSession() as http:
            await SandboxControl(self.sandbox_url, http).add_orders(orders)
        self.counts["purchase orders"] += len(orders)
        await self.dispatch_acknowledged()

    async def dispatch_acknowledged(self) -> None:
        """The warehouse ships what was acknowledged: one dispatch per acknowledged PO with
        Accepted lines, a carton per line (the ASN flow builds and sends its ASN)."""
        acks = await read_all(self.s.kafka_bootstrap, self.s.topic_po_acknowledgements)
        by_asin = {self.asin(sku): sku for sku in self.skus}
        out = []
        for rec in acks:
            ack = rec.json()
            po = ack["purchaseOrderNumber"]
            if po in self.dispatched or po in self.nothing_to_ship or not po.startswith("CR"):
                continue
            goods = []
            for item in ack["items"]:
                eaches = sum(
                    a["acknowledgedQuantity"]["amount"]
                    * (a["acknowledgedQuantity"].get("unitSize") or 1)
                    for a in item["itemAcknowledgements"]
                    if a["acknowledgementCode"] == "Accepted"
                )
                sku = by_asin.get(item.get("amazonProductIdentifier", ""))
                if eaches and sku:
                    goods.append((sku, eaches))
            if not goods:  # nothing dispatched: no ASN to wait for
                self.nothing_to_ship.add(po)
                continue
            self.dispatched[po] = f"SH-{po}"
            out.append((po.encode(), self.dispatch(po, goods)))
        if out:
            await produce(self.s.kafka_bootstrap, self.s.topic_dispatches, out)
            self.counts["dispatches"] += len(out)

    def dispatch(self, po: str, goods: list[tuple[str, int]]) -> dict[str, Any]:
        now = datetime.now(UTC)
        n = int(po[2:])
        d = dispatch_record(f"D-{po}", f"SH-{po}", po, goods[0][0], goods[0][1], n * 10, now)
        d["shippedDate"] = (now - timedelta(minutes=1)).isoformat()  # after the PO's date
        cartons = []
        for i, (sku, eaches) in enumerate(goods):
            code = gs1_check(f"00614141{(n * 10 + i) % 10**9:09d}")
            cartons.append({"sscc": code, "items": [{"sku": sku, "quantityEaches": eaches}]})
        d["cartons"] = cartons
        d["pallets"] = [{"sscc": gs1_check(f"30614141{n % 10**9:09d}"),
                         "cartons": [c["sscc"] for c in cartons]}]  # fmt: skip
        return d

    def order(self) -> dict[str, Any]:
        rng = self.rng
        number = f"CR{len(self.po_numbers) + 1:06d}"
        self.po_numbers.append(number)
        items = []
        for seq, sku in enumerate(rng.sample(self.skus, rng.randrange(1, 4)), start=1):
            if int(sku[-2:]) % 2:
                items.append(po_item(str(seq), self.asin(sku), rng.randrange(1, 8), "Cases", 6))
            else:
                items.append(po_item(str(seq), self.asin(sku), rng.randrange(1, 60)))
        return purchase_order(number, items, when=datetime.now(UTC))

    async def final_sync(self) -> None:
        """Deliver every entry's current state, as commercetools' subscription would after
        the worker's own reservations: the stock then shows every applied command."""
        messages = []
        for entry_id in self.entries.values():
            entry = await self.ct.get_inventory_entry(entry_id)
            assert entry is not None
            messages.append((b"ct", self.message(entry)))
        await produce(self.s.kafka_bootstrap, self.s.topic_ct_messages, messages)
        self.counts["stock messages"] += len(messages)

    async def entries_now(self) -> list[dict[str, Any]]:
        out = []
        for entry_id in self.entries.values():
            entry = await self.ct.get_inventory_entry(entry_id)
            assert entry is not None
            out.append(entry)
        return out


async def received(sandbox_url: str, operation: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        return await SandboxControl(sandbox_url, http).received(operation)


# --- the crash driver (shared by test_crash and the soak command) -------------------------
@dataclass
class CrashResult:
    kills: int
    seconds: float
    counts: Counter[str]
    report: Report
    alive: bool
    agent_crashes: list[str]
    log: str

    def summary(self) -> str:
        return (
            f"crash run: {self.kills} SIGKILLs in {self.seconds:.0f}s, workload "
            f"{dict(self.counts)}, invariants {'hold' if self.report.ok else 'VIOLATED'} "
            f"(checked {dict(self.report.checked)}), agent crashes {len(self.agent_crashes)}"
        )


async def crash_run(
    s: Settings,
    tmp: Path,
    *,
    seed: int,
    kills: int | None = None,
    minutes: float | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> CrashResult:
    """Traffic while the worker is SIGKILLed at random points (``kills`` times, or until
    ``minutes`` pass), restarted each time; then everything settles and the invariants of
    docs/reliability.md are checked from the topics, the emulator and the sandbox."""
    port = sandbox_port(s)
    config = workload_sandbox(s)
    started = time.monotonic()
    log_path = tmp / "worker.log"
    rng = random.Random(seed + 1)
    async with running_sandbox(config, port=port) as url:
        sc = Scenario(s, url, seed)
        try:
            await sc.setup()
            w = WorkerProcess(s, log_path).start()
            await ready(w)
            done = 0
            deadline = started + minutes * 60 if minutes else None
            while (kills is None or done < kills) and (
                deadline is None or time.monotonic() < deadline
            ):
                for _ in range(rng.randrange(1, 4)):
                    await sc.step()
                # a random point: mostly while it works (partitions assigned, a random
                # moment into the batches, commits and sends), sometimes mid-recovery
                if rng.random() < 0.8:
                    await assigned(w)
                    await asyncio.sleep(rng.uniform(0.1, 3.0))
                else:
                    await asyncio.sleep(rng.uniform(0.0, 1.0))
                w.kill()
                done += 1
                progress(f"kill {done} at {time.monotonic() - started:.0f}s, {dict(sc.counts)}")
                w = WorkerProcess(s, log_path).start()
                await ready(w)
            progress("settling")
            report = await settle(s, w, sc, url)
            alive = w.proc is not None and w.proc.poll() is None
            w.stop(timeout=15)
        finally:
            await sc.close()
    text = log_path.read_text(errors="replace")
    crashes = [ln for ln in text.splitlines() if "Crashed reason=" in ln]
    return CrashResult(done, time.monotonic() - started, sc.counts, report, alive, crashes, text)


async def ready(w: WorkerProcess, timeout: float = 90.0) -> None:
    """``WorkerProcess.wait_ready`` without blocking the loop (the sandbox runs on it)."""
    await asyncio.to_thread(w.wait_ready, timeout)


async def shipped(s: Settings, shipments: set[str], timeout: float = 90.0) -> set[str]:
    """Until every dispatched shipment has an ASN or an owned exception (bounded); the
    shipments still without either."""
    deadline = time.monotonic() + timeout
    missing = set(shipments)
    while time.monotonic() < deadline:
        asns = await read_all(s.kafka_bootstrap, s.topic_shipment_confirmations)
        excs = await read_all(s.kafka_bootstrap, s.topic_exceptions)
        done = {x.key.decode() for x in asns if x.key}
        done |= {sid for x in excs if (sid := (x.json().get("refs") or {}).get("shipmentId"))}
        missing = shipments - done
        if not missing:
            break
        await asyncio.sleep(2)
    return missing


async def assigned(w: WorkerProcess, timeout: float = 60.0) -> dict[str, Any] | None:
    """Until the worker owns partitions and is not rebalancing (it is doing work): None
    then, else (timed out) the last /health answer, for the test to report."""
    deadline = time.monotonic() + timeout
    h: dict[str, Any] = {}
    lags: Any = []
    while time.monotonic() < deadline:
        try:
            h = await asyncio.to_thread(health, w)
            lags = (await asyncio.to_thread(scrape, w)).get("kafka_consumergroup_group_lag")
        except OSError as exc:
            h, lags = {"rebalancing": True, "error": repr(exc)}, []
        if not h.get("rebalancing") and lags:
            return None
        await asyncio.sleep(0.3)
    return {**h, "lag series": bool(lags)} if h else {"no answer": True}


async def settle(s: Settings, w: WorkerProcess, sc: Scenario, url: str) -> Report:
    """Let the last worker finish everything, deliver commercetools' final state, then check
    the invariants until they hold (debounce, acknowledgement sender) or time runs out."""
    want = set(sc.po_numbers)
    await wait_for(
        s.kafka_bootstrap,
        s.topic_po_acknowledgements,
        lambda r: want <= {x.key.decode() for x in r if x.key},
        timeout=150,
    )
    await sc.dispatch_acknowledged()
    inputs = [s.topic_ct_messages, s.topic_sku_mappings, s.topic_purchase_orders,
              s.topic_inventory_commands, s.topic_dispatches]  # fmt: skip
    await wait_drained(w, inputs, timeout=120, counted=False)
    return await final_report(s, sc, url)


async def final_report(s: Settings, sc: Scenario, url: str) -> Report:
    """Once the input is drained: the dispatched shipments confirmed, commercetools' final
    state delivered, then the invariant checker every 2 s until it passes (debounce,
    acknowledgement sender) or 40 tries are over; its last report."""
    t0 = time.monotonic()
    missing = await shipped(s, set(sc.dispatched.values()))
    print(f"  shipments confirmed in {time.monotonic() - t0:.0f}s; without ASN or exception: "
          f"{sorted(missing)[:10] or 'none'}")  # fmt: skip
    await sc.final_sync()
    report = Report()
    for _ in range(40):
        await asyncio.sleep(2)
        report = check(
            await collect(s),
            ct_entries=await sc.entries_now(),
            ct_base=sc.base,
            sandbox_acks=await received(url, "submitAcknowledgement"),
            sandbox_asns=await received(url, "SubmitShipmentConfirmations"),
        )
        if report.ok:
            break
    return report

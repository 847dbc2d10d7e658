"""A worker SIGKILLed between saving a PO's record and sending what it produced: the exact
state it leaves on the broker, written before a real worker starts, and what that worker
must do with it (docs/reliability.md, "a crash between saving a record and sending its
outputs").

``_po_batch`` writes the ``pos`` changelog record first, then sends the batch's outputs (the
acknowledgement, the lines to their SKU partitions), and commits the po-events records only
once all of it is delivered. A kill in between leaves: the record in ``<app>-pos-changelog``
(saying "built" or "lines sent"), the po-events records that produced it uncommitted for the
group (the app id), and none of the outputs. The restarted worker recovers the record, is
handed the po-events records again, and finds them duplicates.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.adapters.codecs import dumps
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from streams.domain import po_book, po_messages
from streams.domain.allocation import allocate
from streams.domain.ctmessages import StockObservation
from streams.domain.inventory import SkuState
from streams.domain.mapping import SkuMapping
from streams.domain.po_messages import Allocate, Decisions, OrderTaken
from streams.domain.purchase_order import PurchaseOrderRecord
from streams.domain.purchase_orders import PoLine
from streams.runtime.kafka import partition_for
from streams.sandbox.amazon import SandboxControl, running_sandbox
from tests.support.badinput import po_item, purchase_order
from tests.support.e2e import at_sandbox, e2e_sandbox, e2e_settings
from tests.support.kafka import read_all, wait_for
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

Rec = tuple[str, bytes, bytes, int | None]  # topic, key, value, partition (None: by key)

SKU, ASIN = "SKU-RDL", "B0REDELIV1"
MAPPING = {
    "sku": SKU,
    "asin": ASIN,
    "vendorProductIdentifier": f"V{ASIN}",
    "amazonChannels": ["wh-1"],
    "netCost": {"amount": "10.00", "currencyCode": "USD"},
}


@pytest.fixture
def settings(kafka: str, ct_api: str, tmp_path: Path) -> Settings:
    s = e2e_settings(
        kafka, tmp_path, ct_api_url=ct_api, ct_auth_url=ct_api,
        ct_project_key=f"rdl-{tmp_path.name[-8:]}".replace("_", "-"),
        po_poll_interval_s=3600.0,  # the sandbox has no POs; the state below is the input
    )  # fmt: skip
    asyncio.run(create_topics(s))
    asyncio.run(_internal_topics(s))
    return at_sandbox(s)


async def _internal_topics(s: Settings) -> None:
    """The worker's own topics the crashed worker had created (Faust creates them at start
    when missing): written to before the worker runs, so made here the way Faust makes them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(f"{s.app_id}-po-events", s.partitions, 1),
            *(NewTopic(f"{s.app_id}-{table}-changelog", s.partitions, 1,
                       topic_configs={"cleanup.policy": "compact"})
              for table in ("pos", "skus")),
        ])  # fmt: skip
    finally:
        await admin.close()


async def _send(bs: str, records: list[Rec]) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bs)
    await p.start()
    try:
        for topic, key, value, partition in records:
            await p.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await p.stop()


def _context(s: Settings, now: float) -> po_book.Context:
    mapping = SkuMapping.model_validate(MAPPING)
    return po_book.Context(
        resolve=lambda asin, vpi: mapping if asin == ASIN else None,
        now=now,
        backorder_lead_days=s.backorder_lead_days,
    )


def _crashed_state(
    s: Settings, number: str, *, decided: bool
) -> tuple[list[Rec], PurchaseOrderRecord, bytes | None]:
    """What a worker killed right after saving ``number``'s record leaves on the broker (the
    records to write), the record, and the acknowledgement it had built (``decided``) or
    None (killed after taking the PO in, before its lines reached the SKU partition)."""
    key = number.encode()
    partition = partition_for(key, s.partitions)  # Faust's producer: aiokafka's murmur2
    order = purchase_order(number, [po_item("1", ASIN, 4)])
    now = time.time()
    ctx = _context(s, now)
    taken = OrderTaken(order)
    po, eff = po_book.apply(None, taken, ctx)
    assert po is not None and [type(m) for m in eff.sku] == [Allocate]
    events = [dumps(po_messages.to_json(taken))]
    body = None
    if decided:  # the SKU partition's decision came back, and the acknowledgement was built
        line = PoLine.model_validate(eff.sku[0].line)
        mapping = SkuMapping.model_validate(MAPPING)
        d = allocate(line, 100, mapping, now=ctx.now_dt, backorder_lead_days=s.backorder_lead_days)
        decision = Decisions((d.model_dump(mode="json"),), one=True)
        po, _ = po_book.apply(po, decision, ctx)
        assert po is not None
        built = po_book.acknowledge(po, ctx, s.spapi_selling_party)
        assert isinstance(built, bytes)
        body = built
        events.append(dumps(po_messages.to_json(decision)))
    records: list[Rec] = [(f"{s.app_id}-pos-changelog", key, dumps(po.to_json()), partition)]
    records += [(f"{s.app_id}-po-events", key, v, partition) for v in events]
    return records, po, body


def _ack_counts(w: WorkerProcess) -> str:
    keep = ("streams_acknowledgements_total", "streams_records_total")
    return "\n".join(ln for ln in w.metrics().splitlines() if ln.startswith(keep))


@asynccontextmanager
async def _restarted_worker(
    s: Settings, tmp_path: Path
) -> AsyncIterator[tuple[SandboxControl, WorkerProcess]]:
    """The SP-API sandbox, and a worker started on the state written before, ready."""
    async with running_sandbox(e2e_sandbox(s), port=s.sandbox_port) as url, \
            aiohttp.ClientSession() as http:  # fmt: skip
        w = WorkerProcess(s, tmp_path / "worker.log").start()
        try:
            w.wait_ready()
            yield SandboxControl(url, http), w
        finally:
            w.stop()


async def test_a_built_acknowledgement_lost_in_a_crash_is_sent_once_identical(
    settings: Settings, tmp_path: Path
) -> None:
    s, bs = settings, settings.kafka_bootstrap
    records, po, body = _crashed_state(s, "RDLACK01", decided=True)
    assert body is not None and po.ack.hash == hashlib.sha256(body).hexdigest()
    await _send(bs, records)
    async with _restarted_worker(s, tmp_path) as (control, w):
        acks = await wait_for(bs, s.topic_po_acknowledgements, bool, timeout=40)
        assert acks, "the built acknowledgement was never sent again\n" + w.tail()
        sent = await wait_for(
            bs, f"{s.app_id}-po-events",
            lambda r: any(x.json().get("t") == "ack-submitted" for x in r),
        )  # fmt: skip
        assert any(x.json().get("t") == "ack-submitted" for x in sent), w.tail()
        await asyncio.sleep(3)  # a second send would have happened by now
        acks = await read_all(bs, s.topic_po_acknowledgements)
        assert [(a.key, a.value) for a in acks] == [(b"RDLACK01", body)], _ack_counts(w)
        submitted = await control.received("submitAcknowledgement")
        assert [e["status"] for e in submitted] == [202]
        assert submitted[0]["body"]["acknowledgements"] == [orjson.loads(body)]
        assert 'outcome="resent"} 1.0' in _ack_counts(w)


async def test_lines_lost_in_a_crash_are_decided_once_and_the_po_acknowledged(
    settings: Settings, tmp_path: Path
) -> None:
    s, bs = settings, settings.kafka_bootstrap
    records, po, _ = _crashed_state(s, "RDLLIN01", decided=False)
    assert po.undecided() and not po.ack.hash
    # the SKU side as the crashed worker left it (its ``skus`` record, in the SKU's
    # partition): the product known, 10 in stock; the line never reached it
    sku = SkuState(SKU, mapping=SkuMapping.model_validate(MAPPING))
    assert sku.apply(StockObservation(SKU, "wh-1", "e1", 1, "set", 10, 10)) == "applied"
    key = SKU.encode()
    await _send(bs, [
        (s.topic_sku_mappings, key, orjson.dumps(MAPPING), None),
        (f"{s.app_id}-skus-changelog", key, dumps(sku.to_dict()), partition_for(key, s.partitions)),
        *records,
    ])  # fmt: skip
    async with _restarted_worker(s, tmp_path) as (control, w):
        acks = await wait_for(bs, s.topic_po_acknowledgements, bool, timeout=40)
        assert acks, "the undecided lines were never sent again\n" + w.tail()
        await wait_for(
            bs, f"{s.app_id}-po-events",
            lambda r: any(x.json().get("t") == "ack-submitted" for x in r),
        )  # fmt: skip
        await asyncio.sleep(3)
        acks = await read_all(bs, s.topic_po_acknowledgements)
        assert [a.key for a in acks] == [b"RDLLIN01"], _ack_counts(w)
        [item] = acks[0].json()["items"]
        assert [(e["acknowledgementCode"], e["acknowledgedQuantity"]["amount"])
                for e in item["itemAcknowledgements"]] == [("Accepted", 4)]  # fmt: skip
        commands = [r.json() for r in await read_all(bs, s.topic_inventory_commands)]
        assert [(c["action"], c["sku"], c["quantity"]) for c in commands] == [("reserve", SKU, 4)]
        submitted = await control.received("submitAcknowledgement")
        assert [e["status"] for e in submitted] == [202]
        assert submitted[0]["body"]["acknowledgements"] == [acks[0].json()]

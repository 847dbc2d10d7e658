"""ct.inventory-commands applied to commercetools exactly once: a real worker on real Kafka
against the commercetools emulator over HTTP; crashes (SIGKILL) while it applies commands,
racing appliers on one entry, a lost HTTP answer; and the topic's contract."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, web
from aiokafka import AIOKafkaProducer
from jsonschema import Draft202012Validator

from streams.adapters.commercetools import CommercetoolsClient
from streams.adapters.kafka_admin import create_topics
from streams.agents.ct_command_applier import CommandApplier
from streams.config import Settings
from streams.domain.ctmessages import BadRecord
from streams.domain.inventory_commands import (
    InventoryCommand,
    applied_ids,
    parse_command,
    plan_update,
)
from streams.resync import Difference, resource_deleted, resource_updated
from tests.support.kafka import Record, produce, read_all, unique_settings, wait_for
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
TYPE_KEY = "streams-inventory-ledger"


def cmd(
    cid: str, action: str, sku: str, channel: str, q: int, po: str = "PO123456", seq: str = "1"
) -> dict[str, Any]:
    return {
        "commandId": cid,
        "action": action,
        "sku": sku,
        "supplyChannel": channel,
        "quantity": q,
        "purchaseOrderNumber": po,
        "itemSequenceNumber": seq,
        "createdAt": "2026-11-27T08:15:02.120Z",
    }


def project(prefix: str) -> str:
    """A project of its own: the emulator keeps data per project key until it stops."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def settings_for(kafka: str, ct_api: str, tmp: Path, **kw: Any) -> Settings:
    return unique_settings(
        kafka,
        tmp,
        web_port=free_port(),
        ct_api_url=ct_api,
        ct_auth_url=ct_api,
        ct_project_key=project("cmd"),
        **kw,
    )


@pytest.fixture
def cmd_settings(kafka: str, ct_api: str, tmp_path: Path) -> Settings:
    s = settings_for(kafka, ct_api, tmp_path)
    asyncio.run(create_topics(s))
    return s


async def seed(
    s: Settings, entries: list[tuple[str, str | None, int]]
) -> dict[tuple[str, str], str]:
    """Create channels (by key) and entries; returns (sku, channel key) -> channel id ("")."""
    out: dict[tuple[str, str], str] = {}
    async with CommercetoolsClient(s) as ct:
        channels: dict[str, str] = {}
        for sku, key, qty in entries:
            draft: dict[str, Any] = {"sku": sku, "quantityOnStock": qty}
            ch_id = ""
            if key is not None:
                if key not in channels:
                    ch = await ct.create_channel({"key": key, "roles": ["InventorySupply"]})
                    channels[key] = ch["id"]
                ch_id = channels[key]
                draft["supplyChannel"] = {"typeId": "channel", "id": ch_id}
            await ct.create_inventory_entry(draft)
            out[(sku, key or "")] = ch_id
    return out


async def stock(s: Settings, sku: str, channel: str) -> dict[str, Any]:
    async with CommercetoolsClient(s) as ct:
        found = [
            e
            for e in await ct.inventory_by_sku(sku)
            if (e.get("supplyChannel") or {}).get("id", "") == channel
        ]
    assert len(found) == 1
    return found[0]


def confirmations(records: list[Record]) -> list[dict[str, Any]]:
    return [v for r in records if (v := r.json()).get("t") == "applied"]


def sku_events(s: Settings) -> str:
    return f"{s.app_id}-sku-events"


# --- (a) apply, duplicates, (d) unknown entry -> DLQ, (e) confirmations --------------------
@pytest.mark.kafka
@pytest.mark.ctmock
async def test_worker_applies_commands_once_and_dead_letters_the_rest(
    cmd_settings: Settings, tmp_path: Path
) -> None:
    s = cmd_settings
    bs, topic = s.kafka_bootstrap, s.topic_inventory_commands
    ch = await seed(s, [("SKU-A", "wh-a", 100), ("SKU-A", None, 50), ("SKU-B", "wh-b", 30)])
    a, b = ch[("SKU-A", "wh-a")], ch[("SKU-B", "wh-b")]
    first = [
        (b"SKU-A", cmd("reserve:PO1#1:1", "reserve", "SKU-A", a, 24)),
        (b"SKU-A", cmd("release:PO1#1:2", "release", "SKU-A", a, 4)),
        (b"SKU-A", cmd("reserve:PO1#2:3", "reserve", "SKU-A", "", 10, seq="2")),
        (b"SKU-A", cmd("reserve:PO1#1:1", "reserve", "SKU-A", a, 24)),  # redelivered
        (b"SKU-B", cmd("reserve:PO1#3:4", "reserve", "SKU-B", b, 30, seq="3")),
        (b"SKU-C", cmd("reserve:PO1#4:5", "reserve", "SKU-C", a, 1, seq="4")),  # no entry
        (b"SKU-A", cmd("reserve:PO1#1:6", "reserve", "SKU-A", "no-such-channel", 2)),
        (b"SKU-A", b"{not json"),
        (b"SKU-A", {**cmd("reserve:PO1#1:7", "reserve", "SKU-A", a, 2), "quantity": 0}),
        (b"SKU-X", cmd("reserve:PO1#1:8", "reserve", "SKU-A", a, 2)),  # key != sku
    ]
    await produce(bs, topic, first)
    w = WorkerProcess(s, tmp_path / "worker.log").start()
    try:
        w.wait_ready()
        recs = await wait_for(bs, sku_events(s), lambda r: len(confirmations(r)) >= 5, 45)
        dlq = await wait_for(bs, s.dlq_topic(topic), lambda r: len(r) >= 5, 30)
        # the same command delivered again later, in another batch: still applied once
        await produce(
            bs,
            topic,
            [
                (b"SKU-A", cmd("reserve:PO1#1:1", "reserve", "SKU-A", a, 24)),
                (b"SKU-B", cmd("release:PO1#3:9", "release", "SKU-B", b, 5, seq="3")),
            ],
        )
        recs = await wait_for(
            bs,
            sku_events(s),
            lambda r: (
                {"release:PO1#3:9"} <= {c["cmd"] for c in confirmations(r)}
                and len(confirmations(r)) >= 7
            ),
            30,
        )
        metrics = w.metrics()
    finally:
        w.stop()

    entry_a = await stock(s, "SKU-A", a)
    assert entry_a["quantityOnStock"] == 100 - 24 + 4
    assert (await stock(s, "SKU-A", ""))["quantityOnStock"] == 50 - 10
    assert (await stock(s, "SKU-B", b))["quantityOnStock"] == 30 - 30 + 5
    assert applied_ids(entry_a) == {"reserve:PO1#1:1", "release:PO1#1:2"}

    # (e) one confirmation per delivery that reached commercetools, keyed by SKU
    conf = confirmations(recs)
    assert Counter(c["cmd"] for c in conf) == {
        "reserve:PO1#1:1": 3,
        "release:PO1#1:2": 1,
        "reserve:PO1#2:3": 1,
        "reserve:PO1#3:4": 1,
        "release:PO1#3:9": 1,
    }
    by_cmd = {c["cmd"]: c for c in conf}
    assert by_cmd["release:PO1#1:2"] == {
        "t": "applied",
        "cmd": "release:PO1#1:2",
        "action": "release",
        "ch": a,
        "entry": entry_a["id"],
        "v": by_cmd["release:PO1#1:2"]["v"],
        "q": 4,
    }
    assert by_cmd["reserve:PO1#2:3"]["ch"] == ""
    assert all(c["v"] <= entry_a["version"] for c in conf if c["entry"] == entry_a["id"])
    keys = {r.key for r in recs if r.json().get("t") == "applied"}
    assert keys == {b"SKU-A", b"SKU-B"}

    # (d) dead letters with their reasons, and exceptions for the operations team
    reasons = sorted(r.json()["error"] for r in dlq)
    assert len(dlq) == 5, reasons
    assert any("unknown inventory entry" in x and "'SKU-C'" in x for x in reasons)
    assert any("unknown inventory entry" in x and "no-such-channel" in x for x in reasons)
    assert any(x.startswith("not JSON") for x in reasons)
    assert any("quantity" in x and "greater than 0" in x for x in reasons)
    assert any("differs from value sku" in x for x in reasons)
    exceptions = [r.json() for r in await wait_for(bs, s.topic_exceptions, lambda r: len(r) >= 2)]
    assert sorted(e["refs"]["sku"] for e in exceptions) == ["SKU-A", "SKU-C"]
    assert {e["kind"] for e in exceptions} == {"ct-command-failed"}
    assert all(e["owner"] == "operations" and "unknown inventory entry" in e["rootCause"]
               for e in exceptions)  # fmt: skip

    assert 'streams_ct_commands_total{action="reserve",outcome="duplicate"} 2.0' in metrics
    assert 'streams_ct_commands_total{action="reserve",outcome="applied"} 3.0' in metrics
    assert 'streams_ct_commands_total{action="reserve",outcome="dlq"} 2.0' in metrics
    assert 'streams_ct_commands_total{action="unknown",outcome="dlq"} 3.0' in metrics
    assert 'streams_last_success_timestamp_seconds{flow="ct_commands"}' in metrics


# --- (b) exactly once across crashes ---------------------------------------------------------
@pytest.mark.kafka
@pytest.mark.ctmock
async def test_exactly_once_across_sigkills(kafka: str, ct_api: str, tmp_path: Path) -> None:
    s = settings_for(kafka, ct_api, tmp_path, broker_session_timeout_s=6.0, batch_max=8)
    await create_topics(s)
    bs, topic = s.kafka_bootstrap, s.topic_inventory_commands
    rng = random.Random(20261127)
    skus = [f"SKU-{i:02d}" for i in range(10)]
    ch = await seed(s, [(sku, "wh-1", 5000) for sku in skus])
    channel = ch[(skus[0], "wh-1")]
    commands = []
    expected = dict.fromkeys(skus, 5000)
    for n in range(200):
        sku = rng.choice(skus)
        action = rng.choice(["reserve", "reserve", "release"])
        q = rng.randint(1, 40)
        expected[sku] += -q if action == "reserve" else q
        commands.append((sku.encode(), cmd(f"{action}:PO{n}#1:{n}", action, sku, channel, q)))

    async def trickle() -> None:  # commands keep arriving while workers die and restart
        producer = AIOKafkaProducer(bootstrap_servers=bs, linger_ms=5)
        await producer.start()
        try:
            for i in range(0, len(commands), 5):
                for key, value in commands[i : i + 5]:
                    await producer.send(topic, key=key, value=orjson.dumps(value))
                await producer.flush()
                await asyncio.sleep(1.0)  # ~40 s of arrivals: kills land while work remains
        finally:
            await producer.stop()

    feeder: asyncio.Task[None] | None = None
    ids = {c["commandId"] for _, c in commands}
    duplicates = 0
    confirmed_at_kill: list[int] = []
    for n in range(4):
        w = WorkerProcess(s, tmp_path / f"worker{n}.log").start()
        try:
            await asyncio.to_thread(w.wait_ready)
            if feeder is None:  # start feeding once a worker runs: a slow start must not let
                feeder = asyncio.create_task(trickle())  # every command land before a kill
            if n < 3:
                # once it applies commands, die at a random moment: no shutdown, no commit
                before = len(confirmations(await read_all(bs, sku_events(s))))

                def progressed(r: list[Record], b: int = before) -> bool:
                    seen = confirmations(r)
                    return len(seen) > b or ids <= {c["cmd"] for c in seen}

                await wait_for(bs, sku_events(s), progressed)
                await asyncio.sleep(rng.uniform(0.3, 1.5))
                duplicates += _metric(w.metrics(), "duplicate")
                w.kill()
                done = {c["cmd"] for c in confirmations(await read_all(bs, sku_events(s)))}
                confirmed_at_kill.append(len(done))
                continue
            await feeder
            recs = await wait_for(
                bs, sku_events(s), lambda r: ids <= {c["cmd"] for c in confirmations(r)}
            )
            assert ids <= {c["cmd"] for c in confirmations(recs)}, w.tail()
            duplicates += _metric(w.metrics(), "duplicate")
        finally:
            w.kill()

    print(f"confirmed at each kill: {confirmed_at_kill}; duplicates seen: {duplicates}")
    # killed while applying: commands were done and commands were still to come
    assert len(confirmed_at_kill) == 3 and 0 < confirmed_at_kill[0] < len(ids)
    for sku in skus:
        entry = await stock(s, sku, channel)
        assert entry["quantityOnStock"] == expected[sku], sku
        assert applied_ids(entry) == {c["commandId"] for k, c in commands if k == sku.encode()}
    # redeliveries after the crashes happened and were recognised (not re-applied)
    assert duplicates > 0


def _metric(text: str, outcome: str) -> int:
    total = 0
    for line in text.splitlines():
        if line.startswith("streams_ct_commands_total{") and f'outcome="{outcome}"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


@pytest.mark.kafka
@pytest.mark.ctmock
async def test_stopping_while_commercetools_is_down_loses_nothing(
    kafka: str, ct_api: str, tmp_path: Path
) -> None:
    """Commands in flight when the worker stops (SIGTERM) during an outage are not committed:
    the next worker applies them."""
    good = settings_for(kafka, ct_api, tmp_path)
    await create_topics(good)
    closed = f"http://127.0.0.1:{free_port()}"
    down = good.model_copy(update={"ct_api_url": closed, "ct_auth_url": closed})
    ch = await seed(good, [("SKU-T", "wh-t", 100)])
    await produce(
        good.kafka_bootstrap,
        good.topic_inventory_commands,
        [
            (b"SKU-T", cmd(f"reserve:PO9#1:{i}", "reserve", "SKU-T", ch[("SKU-T", "wh-t")], 3))
            for i in range(3)
        ],
    )
    w = WorkerProcess(down, tmp_path / "down.log").start()
    try:
        await asyncio.to_thread(w.wait_ready)
        for _ in range(60):  # until it is retrying the commands
            if _metric(w.metrics(), "error"):
                break
            await asyncio.sleep(0.5)
        assert _metric(w.metrics(), "error") > 0, w.tail()
    finally:
        await asyncio.to_thread(w.stop)
    w = WorkerProcess(good, tmp_path / "up.log").start()
    try:
        await asyncio.to_thread(w.wait_ready)
        recs = await wait_for(
            good.kafka_bootstrap, sku_events(good), lambda r: len(confirmations(r)) >= 3
        )
        assert len(confirmations(recs)) == 3, w.tail()
    finally:
        w.stop()
    assert (await stock(good, "SKU-T", ch[("SKU-T", "wh-t")]))["quantityOnStock"] == 100 - 9


# --- (c) racing appliers on one entry; a lost answer ---------------------------------------
def command(cid: str, action: str, sku: str, q: int) -> InventoryCommand:
    return InventoryCommand.model_validate(cmd(cid, action, sku, "", q))


@pytest.mark.ctmock
async def test_racing_appliers_lose_no_update(ct_api: str, tmp_path: Path) -> None:
    s = Settings(ct_api_url=ct_api, ct_auth_url=ct_api, ct_project_key=project("race"))
    await seed(s, [("SKU-R", None, 1000)])
    cmds = [command(f"c{i}", "reserve" if i % 3 else "release", "SKU-R", i + 1) for i in range(60)]
    statuses: Counter[int] = Counter()
    hooks = _Hooks(statuses)
    async with (
        CommercetoolsClient(s, max_conflict_retries=200, hooks=hooks) as c1,
        CommercetoolsClient(s, max_conflict_retries=200, hooks=hooks) as c2,
    ):
        w1 = CommandApplier(c1, type_key=TYPE_KEY, keep=200, retry_s=30)
        w2 = CommandApplier(c2, type_key=TYPE_KEY, keep=200, retry_s=30)
        # both "workers" get the overlapping middle third (a rebalance), one at a time each,
        # all at once: every update races the others on the same entry
        jobs = [w1.apply([c]) for c in cmds[:40]] + [w2.apply([c]) for c in cmds[20:]]
        results = [r for rs in await asyncio.gather(*jobs) for r in rs]
    assert {r.outcome for r in results} <= {"applied", "duplicate"}
    entry = await stock(s, "SKU-R", "")
    assert entry["quantityOnStock"] == 1000 + sum(c.delta for c in cmds)
    assert applied_ids(entry) == {c.commandId for c in cmds}
    # every overlapping command was seen by both; commercetools holds it once
    assert Counter(r.command.commandId for r in results)["c25"] == 2
    assert statuses[409] > 0  # the appliers really collided


class _Hooks:
    def __init__(self, statuses: Counter[int]) -> None:
        self.statuses = statuses

    def on_response(self, operation: str, status: int, seconds: float) -> None:
        self.statuses[status] += 1


@pytest.fixture
async def dropping_proxy(ct_api: str) -> AsyncIterator[tuple[str, dict[str, int]]]:
    """An HTTP proxy to the emulator that forwards inventory updates and then drops the
    connection instead of answering, ``drops["n"]`` times: the lost-answer case."""
    drops = {"n": 0, "dropped": 0}
    session = ClientSession()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with session.request(
            request.method, ct_api + request.path_qs, data=body, headers=headers
        ) as up:
            payload = await up.read()
            status, ctype = up.status, up.headers.get("Content-Type", "application/json")
        is_update = request.method == "POST" and "/inventory/" in request.path
        if is_update and status == 200 and drops["n"] > 0:
            drops["n"] -= 1
            drops["dropped"] += 1
            assert request.transport is not None
            request.transport.close()  # applied upstream; the caller never hears of it
            return web.Response(status=200)
        return web.Response(body=payload, status=status, headers={"Content-Type": ctype})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", drops
    finally:
        await runner.cleanup()
        await session.close()


@pytest.mark.ctmock
async def test_lost_answer_is_resolved_by_the_marker(
    dropping_proxy: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    url, drops = dropping_proxy
    s = Settings(ct_api_url=url, ct_auth_url=url, ct_project_key=project("lost"))
    await seed(s, [("SKU-L", None, 100)])
    # one attempt per request: the lost answer surfaces as UpdateOutcomeUnknown
    async with CommercetoolsClient(s, max_attempts=1) as ct:
        applier = CommandApplier(ct, type_key=TYPE_KEY, retry_s=30, sleep=_no_sleep)
        drops["n"] = 2
        first = await applier.apply([command("r1", "reserve", "SKU-L", 7)])
        second = await applier.apply([command("r2", "release", "SKU-L", 3)])
        again = await applier.apply([command("r1", "reserve", "SKU-L", 7)])
    assert drops["dropped"] == 2
    assert [r.outcome for r in first + second + again] == ["applied", "applied", "duplicate"]
    entry = await stock(s, "SKU-L", "")
    assert entry["quantityOnStock"] == 100 - 7 + 3
    assert first[0].version is not None and first[0].version < entry["version"]


async def _no_sleep(_: float) -> None:
    return None


# --- the topic contract ---------------------------------------------------------------------
def schema(name: str) -> Draft202012Validator:
    doc = orjson.loads((SCHEMAS / f"{name}.schema.json").read_bytes())
    Draft202012Validator.check_schema(doc)
    return Draft202012Validator(doc, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_examples_fit_schema_and_model() -> None:
    v = schema("ct.inventory-commands")
    files = sorted((SCHEMAS / "examples" / "ct.inventory-commands").glob("*.json"))
    assert len(files) >= 2
    for f in files:
        doc = orjson.loads(f.read_bytes())
        assert [e.message for e in v.iter_errors(doc)] == [], f.name
        c = parse_command(f.read_bytes(), doc["sku"].encode())
        assert c.commandId == doc["commandId"]


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": 0},
        {"quantity": -3},
        {"quantity": "24"},
        {"quantity": 2.5},
        {"action": "adjust"},
        {"commandId": ""},
        {"sku": ""},
        {"supplyChannel": None},
        {"createdAt": "yesterday"},
        {"createdAt": "2026-11-27T08:15:02"},  # no offset: ambiguous instant
    ],
)
def test_schema_and_model_reject_the_same(change: dict[str, Any]) -> None:
    doc = {**cmd("c1", "reserve", "SKU-1", "ch-1", 24), **change}
    assert list(schema("ct.inventory-commands").iter_errors(doc)), change
    with pytest.raises(BadRecord):
        parse_command(orjson.dumps(doc), b"SKU-1")


def test_missing_fields_are_rejected() -> None:
    for name in ("commandId", "action", "sku", "supplyChannel", "quantity", "createdAt"):
        doc = cmd("c1", "reserve", "SKU-1", "ch-1", 24)
        del doc[name]
        assert list(schema("ct.inventory-commands").iter_errors(doc)), name
        with pytest.raises(BadRecord, match=name):
            parse_command(orjson.dumps(doc), b"SKU-1")


def test_plan_is_one_update_and_skips_applied_ids() -> None:
    entry: dict[str, Any] = {"id": "e1", "version": 7, "quantityOnStock": 40}
    c1, c2 = command("a", "reserve", "S", 10), command("b", "release", "S", 4)
    plan = plan_update(entry, [c1, c2, c1], type_key=TYPE_KEY, keep=4)
    assert plan.version == 7 and plan.new_quantity == 34
    assert [c.commandId for c in plan.todo] == ["a", "b"] and plan.duplicates == [c1]
    assert plan.actions[0] == {
        "action": "setCustomType",
        "type": {"typeId": "type", "key": TYPE_KEY},
        "fields": {"streamsAppliedCommands": ["7:a", "7:b"]},
    }
    assert plan.actions[1] == {"action": "changeQuantity", "quantity": 34}
    # applied: nothing to send; the ledger keeps the newest ids by entry version
    entry = {
        "id": "e1",
        "version": 9,
        "quantityOnStock": 34,
        "custom": {"fields": {"streamsAppliedCommands": ["7:b", "3:old", "7:a", "5:mid"]}},
    }
    assert plan_update(entry, [c1, c2], type_key=TYPE_KEY, keep=4).actions == []
    again = plan_update(entry, [command("c", "reserve", "S", 1)], type_key=TYPE_KEY, keep=4)
    assert again.actions[0]["action"] == "setCustomField"
    assert again.actions[0]["value"] == ["5:mid", "7:a", "7:b", "9:c"]


def test_resync_notifications_fit_the_ct_messages_contract() -> None:
    v = schema("ct.messages")
    up = resource_updated({"id": "e1", "sku": "SKU-1", "version": 5}, "p", 0.0)
    gone = resource_deleted(
        Difference("SKU-1", "ch", "e1", None, 3, None, 4, "missing in commercetools"), "p", 0.0
    )
    for doc in (up, gone):
        assert [e.message for e in v.iter_errors(doc)] == []


def test_relative_plan_sends_the_net_change() -> None:
    entry: dict[str, Any] = {"id": "e1", "version": 3, "quantityOnStock": 40}
    cmds = [command("a", "reserve", "S", 10), command("b", "release", "S", 4)]
    plan = plan_update(entry, cmds, type_key=TYPE_KEY, keep=10, relative=True)
    assert plan.actions[1:] == [{"action": "removeQuantity", "quantity": 6}]
    even = [command("c", "reserve", "S", 5), command("d", "release", "S", 5)]
    plan = plan_update(entry, even, type_key=TYPE_KEY, keep=10, relative=True)
    assert [a["action"] for a in plan.actions] == ["setCustomType"]  # the marker still moves


async def test_retrying_stops_when_the_worker_must_let_go(tmp_path: Path) -> None:
    """A rebalance or shutdown ends the retries; the command is left unacked (redelivered)."""
    from streams.agents.ct_command_applier import Abandoned

    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    s = Settings(ct_api_url=closed, ct_auth_url=closed, ct_project_key=project("gone"))
    async with CommercetoolsClient(s, max_attempts=1) as ct:
        applier = CommandApplier(
            ct, type_key=TYPE_KEY, retry_s=600, sleep=_no_sleep, abort=lambda: True
        )
        with pytest.raises(Abandoned):
            await applier.apply([command("x1", "reserve", "SKU-X", 1)])
        patient = CommandApplier(ct, type_key=TYPE_KEY, retry_s=0, sleep=_no_sleep)
        [gave_up] = await patient.apply([command("x1", "reserve", "SKU-X", 1)])
    assert gave_up.outcome == "dlq" and "gave up after 1 attempts" in (gave_up.reason or "")

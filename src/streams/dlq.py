"""``streams dlq replay TOPIC``: re-deliver dead letters to their source topic after a fix.

A dead letter (``schemas/dlq.schema.json``) keeps the source record's key, its raw value
(``valueBase64``), and where it came from (``source.topic``/``partition``/``offset``). Replay
sends that value with that key to that topic and partition, with a ``dlq.replayed-from``
header (``<dlq topic>@<offset>``) saying where it came from.

Each run reads the DLQ from where the previous run stopped (the committed offset of the
consumer group ``<STREAMS_APP_ID>-dlq-replay``) up to the end the DLQ had when the run
started, and commits that end unless ``--dry-run``: a second run replays only dead letters
written since. ``--all`` reads from the DLQ's beginning instead (the worker drops what it
has already applied: commercetools messages by id and resource version, mappings and
POs by their content). A record that fails again is dead-lettered again, after the end this
run reads to, and is left for the next run.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.config import ConfigError, Settings

REPLAYED_HEADER = "dlq.replayed-from"
FILTER_KEYS = ("error", "reason", "key", "topic", "partition", "offset")
_FILTER = re.compile(r"^(?P<k>[a-z]+)(?P<op>=|~|!=|!~)(?P<v>.*)$", re.DOTALL)

Letter = dict[str, Any]


@dataclass
class Outcome:
    dlq: str
    seen: int = 0
    replayed: int = 0
    passed_over: int = 0  # by --since / --filter
    unusable: list[str] = field(default_factory=list)  # truncated or malformed, with why
    start: int = 0
    end: int = 0


def parse_filter(exprs: list[str]) -> Callable[[Letter], bool]:
    """``KEY=VALUE`` (equal), ``KEY~TEXT`` (contains), ``!=``/``!~`` (not), and-ed; KEY is one
    of error, reason (the metric's reason class), key, topic, partition, offset (of the
    source record)."""
    tests: list[Callable[[Letter], bool]] = []
    for expr in exprs:
        m = _FILTER.match(expr.strip())
        if not m or m["k"] not in FILTER_KEYS:
            raise ConfigError(
                f"--filter {expr!r}: expected KEY=VALUE, KEY~TEXT, KEY!=VALUE or KEY!~TEXT "
                f"with KEY one of {', '.join(FILTER_KEYS)}"
            )
        k, op, v = m["k"], m["op"], m["v"]

        def test(letter: Letter, k: str = k, op: str = op, v: str = v) -> bool:
            have = str(letter.get(k, ""))
            hit = have == v if op in ("=", "!=") else v in have
            return hit if not op.startswith("!") else not hit

        tests.append(test)
    return lambda letter: all(t(letter) for t in tests)


def parse_since(since: str | None) -> float | None:
    if since is None:
        return None
    try:
        t = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--since {since!r}: not an ISO 8601 date-time") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def view(value: bytes | None, key: bytes | None) -> tuple[Letter | None, str]:
    """The fields a filter sees, or None and why the dead letter cannot be replayed."""
    from streams.adapters.codecs import reason_class

    try:
        v = orjson.loads(value or b"")
        src = v["source"]
        letter = {
            "error": str(v["error"]),
            "reason": reason_class(str(v["error"])),
            "key": key.decode("utf-8", "replace") if key is not None else "",
            "topic": str(src["topic"]),
            "partition": int(src["partition"]),
            "offset": int(src["offset"]),
            "failedAt": str(v.get("failedAt") or ""),
        }
    except (ValueError, KeyError, TypeError):
        return None, "not a dead-letter record (schemas/dlq.schema.json)"
    if v.get("valueTruncated"):
        return None, f"truncated: the source record had {v.get('valueBytes')} bytes"
    raw = v.get("valueBase64")
    try:
        letter["raw"] = base64.b64decode(raw, validate=True) if raw is not None else None
    except ValueError:
        return None, "valueBase64 is not base64"
    return letter, ""


async def replay(
    s: Settings,
    topic: str,
    *,
    since: str | None = None,
    filters: list[str] | None = None,
    dry_run: bool = False,
    from_beginning: bool = False,
    say: Callable[[str], None] = print,
) -> Outcome:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    from streams.adapters.kafka_admin import client_kwargs

    dlq = topic if topic.endswith(s.dlq_suffix) else s.dlq_topic(topic)
    since_t, keep = parse_since(since), parse_filter(filters or [])
    kw = client_kwargs(s)
    consumer = AIOKafkaConsumer(group_id=f"{s.app_id}-dlq-replay", enable_auto_commit=False, **kw)
    producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **kw)
    await consumer.start()
    await producer.start()
    out = Outcome(dlq)
    try:
        # topics() lists what exists; partitions_for waits for the topic's metadata
        existing: set[str] = set(await consumer.topics())
        parts = await producer.partitions_for(dlq) if dlq in existing else set()
        if not parts:
            raise ConfigError(f"topic {dlq} does not exist (STREAMS_DLQ_SUFFIX={s.dlq_suffix})")
        tps = [TopicPartition(dlq, p) for p in sorted(parts)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        firsts = await consumer.beginning_offsets(tps)
        for tp in tps:
            committed = None if from_beginning else await consumer.committed(tp)
            start = max(committed if committed is not None else 0, firsts[tp])
            consumer.seek(tp, start)
            out.start, out.end = out.start + start, out.end + ends[tp]
        partitions: dict[str, set[int]] = {}
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=3000, max_records=500)
                for r in batch.get(tp, []):
                    if r.offset >= ends[tp]:
                        break
                    out.seen += 1
                    await _one(r, out, since_t, keep, dry_run, producer, partitions, existing, say)
        if not dry_run:
            await producer.flush()
            await consumer.commit({tp: OffsetAndMetadata(ends[tp], "") for tp in tps})
    finally:
        await producer.stop()
        await consumer.stop()
    return out


async def _one(
    r: Any,
    out: Outcome,
    since_t: float | None,
    keep: Callable[[Letter], bool],
    dry_run: bool,
    producer: Any,
    partitions: dict[str, set[int]],
    existing: set[str],
    say: Callable[[str], None],
) -> None:
    where = f"{out.dlq}@{r.offset}"
    letter, why = view(r.value, r.key)
    if letter is None:
        out.unusable.append(f"{where}: {why}")
        say(f"cannot replay {where}: {why}")
        return
    failed = parse_since(letter["failedAt"]) if letter["failedAt"] else None
    if (since_t is not None and (failed is None or failed < since_t)) or not keep(letter):
        out.passed_over += 1
        return
    target = letter["topic"]
    if target not in existing:  # not waited for: the producer would block on its metadata
        out.unusable.append(f"{where}: source topic {target} does not exist")
        say(f"cannot replay {where}: source topic {target} does not exist")
        return
    if target not in partitions:
        partitions[target] = await producer.partitions_for(target)
    # the source partition (co-partitioned state expects the key there); if the topic has
    # fewer partitions now, the producer's partitioner places the key
    partition = letter["partition"] if letter["partition"] in partitions[target] else None
    say(
        f"{'would replay' if dry_run else 'replay'} {where} -> {target}[{letter['partition']}]"
        f"@{letter['offset']} key={letter['key']!r}: {letter['error'][:120]}"
    )
    out.replayed += 1
    if not dry_run:
        await producer.send(
            target, letter["raw"], key=r.key, partition=partition,
            headers=[(REPLAYED_HEADER, where.encode())],
        )  # fmt: skip


def run_replay(
    s: Settings,
    topic: str,
    *,
    since: str | None,
    filters: list[str],
    dry_run: bool,
    from_beginning: bool,
) -> int:
    out = asyncio.run(
        replay(
            s, topic, since=since, filters=filters, dry_run=dry_run,
            from_beginning=from_beginning,
        )
    )  # fmt: skip
    verb = "would replay" if dry_run else "replayed"
    print(
        f"{out.dlq}: {verb} {out.replayed} of {out.seen} dead letters (offsets "
        f"{out.start}-{out.end}); {out.passed_over} passed over by --since/--filter, "
        f"{len(out.unusable)} cannot be replayed"
    )
    if not dry_run:
        print(f"the next run starts at offset {out.end} (--all: from the beginning)")
    return 1 if out.unusable else 0

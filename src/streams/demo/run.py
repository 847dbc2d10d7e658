"""``streams demo``: seed the world, wait for the worker, run the traffic, show what flows.

On a terminal the view is live; otherwise (a CI log, ``| tee``) nothing but a start line and
one plain summary at the end. ``--json FILE`` writes the summary as JSON as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.live import Live

from streams.adapters.kafka_admin import client_kwargs
from streams.config import Settings
from streams.demo.summary import plain_text, summarize
from streams.demo.traffic import GENERATORS, Traffic, World, seed
from streams.demo.view import View, landed, render, scrape, watch
from streams.procutil import alive

# the worker's first availability record shows it consumes; traffic waits for it this long
READY_TIMEOUT_S = 180.0


class DemoError(Exception):
    """The demo cannot go on (its worker is gone); said in one line, without a traceback."""


def _worker_gone() -> str | None:
    """Why the worker scripts/demo.sh started (``DEMO_WORKER_PID``) is gone, if it is."""
    pid = int(os.environ.get("DEMO_WORKER_PID") or 0)
    if not pid:
        return None  # a worker of the user's own: nothing to watch
    try:  # a dead child of the script stays a zombie until the script reaps it
        gone = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        gone = not alive(pid)
    if not gone:
        return None
    logs = os.environ.get("DEMO_DIR", ".run/demo") + "/worker.log"
    return f"the worker (pid {pid}) exited; see {logs}"


async def _seed_only(s: Settings, skus: int) -> None:
    from streams.adapters.commercetools import CommercetoolsClient
    from streams.sandbox.amazon.generator import default_catalogue

    producer = AIOKafkaProducer(**client_kwargs(s), linger_ms=5)
    await producer.start()
    try:
        async with CommercetoolsClient(s) as ct:
            await seed(s, ct, World(default_catalogue(skus)), producer)
    finally:
        await producer.stop()


def _summary(s: Settings, world: World, v: View, ready_s: float | None) -> dict[str, Any]:
    started, ended = v.traffic_started, v.traffic_ended or time.monotonic()
    return summarize(
        duration_s=0.0 if started is None else ended - started,
        ready_s=ready_s,
        sent=world.sent,
        seen=v.seen(s),
        exceptions=v.exceptions_by_kind(),
        dead_letters=v.counts.get(s.dlq_topic(s.topic_ct_messages), 0),
        metrics=v.metrics,
        ct_topic=s.topic_ct_messages,
        changes=world.changes,
        deltas=v.published,
        since=v.traffic_since if v.traffic_since is not None else time.time(),
        window=s.debounce_window_s,
        max_wait=s.debounce_max_wait_s,
    )


async def _demo(
    s: Settings, duration: float, rate: float, skus: int, live: bool, out: list[dict[str, Any]]
) -> None:
    """Runs until ``duration`` s of traffic have passed (0: until cancelled); appends the
    summary to ``out`` on the way out, also when cancelled by Ctrl-C."""
    from streams.adapters.commercetools import CommercetoolsClient
    from streams.sandbox.amazon.generator import default_catalogue

    world, v = World(default_catalogue(skus)), View()
    stop, traffic_stop = asyncio.Event(), asyncio.Event()  # the view, the generators
    producer = AIOKafkaProducer(**client_kwargs(s), linger_ms=5)
    await producer.start()
    tasks: list[asyncio.Task[Any]] = []
    ready_s: float | None = None
    finished = False
    async with CommercetoolsClient(s) as ct:
        try:
            await seed(s, ct, world, producer)
            traffic = Traffic(s, ct, world, v, producer, traffic_stop, rate)
            tasks = [
                asyncio.create_task(watch(s, v, stop)),
                asyncio.create_task(landed(ct, world, v, stop)),
            ]
            waiting = time.monotonic()
            view = Live(render(s, world, v), refresh_per_second=2) if live else None
            with view or contextlib.nullcontext():
                while not traffic_stop.is_set():
                    await asyncio.sleep(0.5)
                    # a worker that stopped answering keeps its last figures in view
                    v.metrics = await asyncio.to_thread(scrape, s) or v.metrics
                    now = time.monotonic()
                    if (why := _worker_gone()) is not None:
                        raise DemoError(why)
                    if v.traffic_started is None:
                        answered = v.counts.get(s.topic_inventory_updates, 0) > 0
                        if answered or now - waiting >= READY_TIMEOUT_S:
                            ready_s = now - waiting if answered else None
                            v.traffic_started, v.traffic_since = now, time.time()
                            tasks += [asyncio.create_task(g(traffic)) for g in GENERATORS]
                    if view is not None:
                        view.update(render(s, world, v))
                    if duration and v.traffic_started and now - v.traffic_started >= duration:
                        traffic_stop.set()
                    for task in tasks:
                        if task.done() and task.exception():
                            raise task.exception()  # type: ignore[misc]
            finished = True
        finally:
            traffic_stop.set()
            v.traffic_ended = time.monotonic()
            if finished:
                # the last changes are published one debounce window later: read those too
                await asyncio.sleep(s.debounce_window_s + 1.5)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            v.metrics = await asyncio.to_thread(scrape, s) or v.metrics
            out.append(_summary(s, world, v, ready_s))
            await producer.stop()


def run_demo(
    s: Settings,
    duration: float = 0,
    rate: float = 20.0,
    skus: int = 40,
    seed_only: bool = False,
    json_path: Path | None = None,
) -> int:
    """Seed master data and stock (``seed_only``), or seed and run the traffic and view, then
    print the summary (and write it to ``json_path``)."""
    if seed_only:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_seed_only(s, skus))
        return 0
    live = Console().is_terminal
    if not live:
        what = f"{duration:g} s of traffic" if duration else "traffic until interrupted"
        print(f"demo: not a terminal, so no live view: {what}, then one summary", flush=True)
    out: list[dict[str, Any]] = []
    code = 0
    try:
        asyncio.run(_demo(s, duration, rate, skus, live, out))
    except KeyboardInterrupt:
        pass
    except DemoError as exc:
        print(f"demo: stopped: {exc}", file=sys.stderr, flush=True)
        code = 1
    except Exception:  # a bug in the demo itself: say so, and still show what it saw
        traceback.print_exc()
        print("demo: stopped by the error above", file=sys.stderr, flush=True)
        code = 1
    if not out:
        return 1
    print(plain_text(out[0]), flush=True)
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(out[0], option=orjson.OPT_INDENT_2) + b"\n")
        print(f"demo: summary written to {json_path}")
    return code

"""The naive baseline: a per-event Faust table agent (one table write per event).

A standalone ``faust.App``, run as its own worker process by ``bench.inventory``:

    BENCH_BOOTSTRAP=127.0.0.1:9092 BENCH_TOPIC=ct.messages.x BENCH_APP_ID=naive-x \
    BENCH_DATADIR=/tmp/naive BENCH_PORT=6099 python -m bench.naive_agent

For every ``ct.messages`` record it decodes the JSON, reads the (sku, channel) entry from a
RocksDB table, and writes it back when the resource version is newer: one table write (and
one changelog record) per event, the way a first Faust agent is usually written. Progress is
served as JSON on ``http://127.0.0.1:<port>/progress``: events handled, and the wall-clock
time of the first and of the latest one (taken inside the agent, so the polling interval
does not blur the figure).
"""

from __future__ import annotations

import os
import time
from typing import Any

import faust
import orjson

BOOTSTRAP = os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:9092")
TOPIC = os.environ.get("BENCH_TOPIC", "ct.messages")
APP_ID = os.environ.get("BENCH_APP_ID", "bench-naive")
DATADIR = os.environ.get("BENCH_DATADIR", ".run/bench/naive")
PORT = int(os.environ.get("BENCH_PORT", "6099"))

app = faust.App(
    APP_ID,
    broker=f"kafka://{BOOTSTRAP}",
    store="rocksdb://",
    datadir=DATADIR,
    topic_partitions=1,  # ct.messages has one partition; the table must match it
    topic_replication_factor=1,
    topic_allow_declare=True,
    web_enabled=True,
    web_bind="127.0.0.1",
    web_host="127.0.0.1",
    web_port=PORT,
    broker_session_timeout=10.0,
    broker_heartbeat_interval=3.0,
    consumer_auto_offset_reset="earliest",
    producer_linger=0.005,
    producer_max_batch_size=256 * 1024,
    logging_config=None,
)

source = app.topic(TOPIC, key_serializer="raw", value_serializer="raw")
stock = app.Table(
    "stock",
    partitions=1,
    key_type=str,  # values: Faust's json codec (orjson)
    options={"driver": "rocksdict"},
)

progress: dict[str, Any] = {"count": 0, "written": 0, "first": None, "last": None}


@app.agent(source)
async def per_event(stream: faust.StreamT) -> None:
    async for value in stream:
        now = time.time()
        if progress["first"] is None:
            progress["first"] = now
        d = orjson.loads(value)
        channel = (d.get("supplyChannel") or {}).get("id", "")
        key = f"{d['sku']}|{channel}"
        cur = stock.get(key)
        if cur is None or cur["v"] < d["resourceVersion"]:
            stock[key] = {
                "v": d["resourceVersion"],
                "a": d["newAvailableQuantity"],
                "q": d["newQuantityOnStock"],
            }
            progress["written"] += 1
        progress["count"] += 1
        progress["last"] = time.time()


@app.page("/progress")
async def show_progress(web: Any, request: Any) -> Any:
    return web.json(progress)


def main() -> None:
    from faust.worker import Worker

    Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()

"""RocksDB memory of a worker's state at scale, without Kafka or Faust's recovery.

    python -m bench.rocksdb_memory faust|storeopts [SKUS]

Writes SKUS (1,000,000) SKU states of ``bench.state_scale`` and their 3 ``products`` records
into 12 databases (``skus`` and ``products``, 6 partitions each), in WriteBatches as a restore
writes them, opened with Faust's RocksDBOptions: ``faust`` = Faust's defaults (3 x 64 MiB
memtables, 2 GiB block cache per database), ``storeopts`` = ``table_options(Settings())``
(the ``STREAMS_ROCKSDB_*`` settings). Then reads every ``skus`` value once, as the worker's
scan after a rebalance does. Prints the process's RSS before, its peak during the writes, and
after the scan. The databases go to ``.run/bench/`` and are deleted at the end.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import rocksdict
from faust.stores.rocksdb import RocksDBOptions

from bench.harness import RUN_ROOT
from bench.state_scale_fill import StateGen
from streams.agents.faustutil import partition_for
from streams.config import Settings

PARTITIONS = 6


def rss_mib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def options(kind: str) -> dict[str, Any]:
    if kind == "faust":
        return {}
    from streams.agents.storeopts import table_options

    opts = table_options(Settings())
    opts.pop("driver")
    return opts


def main(argv: list[str]) -> int:
    kind = argv[0] if argv else "storeopts"
    n = int(argv[1]) if len(argv) > 1 else 1_000_000
    ro = RocksDBOptions(**options(kind), use_rocksdict=True)
    where = RUN_ROOT / f"rocksdb-memory-{kind}"
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    r0 = rss_mib()
    names = [(t, p) for t in ("skus", "products") for p in range(PARTITIONS)]
    dbs = {k: ro.open(where / f"{k[0]}-{k[1]}.db") for k in names}
    gen = StateGen(n, 3, 8)

    def batches() -> dict[tuple[str, int], Any]:
        return {k: rocksdict.WriteBatch(raw_mode=True) for k in names}

    wbs = batches()
    peak = 0
    t0 = time.time()
    for i in range(n):
        key = gen.sku(i).encode()
        p = partition_for(key, PARTITIONS)
        m = gen.mapping(i)
        wbs[("skus", p)].put(key, orjson.dumps(gen.state(i)))
        wb = wbs[("products", p)]
        wb.put(b"sku:" + key, orjson.dumps(m))
        wb.put(b"asin:" + m["asin"].encode(), key)
        wb.put(b"vpi:" + m["vendorProductIdentifier"].encode(), key)
        if (i + 1) % 5000 == 0 or i + 1 == n:
            for k, b in wbs.items():
                dbs[k].write(b)
            wbs = batches()
            peak = max(peak, rss_mib())
    t1 = time.time()
    scanned = 0
    for (table, _), db in dbs.items():
        if table == "skus":
            it = db.iter()
            it.seek_to_first()
            while it.valid():
                it.value()
                it.next()
                scanned += 1
    out = {
        "options": kind,
        "rocksdb_options": options(kind) or "Faust defaults",
        "skus": n,
        "write_s": round(t1 - t0, 1),
        "rss_before_open_mib": r0,
        "peak_rss_during_writes_mib": peak,
        "rss_after_scan_mib": rss_mib(),
        "scanned": scanned,
        "scan_s": round(time.time() - t1, 1),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    for db in dbs.values():
        db.close()
    shutil.rmtree(where, ignore_errors=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

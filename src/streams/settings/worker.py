"""Settings of the worker process, the inventory rules, and the operations watchers."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class WorkerSettings(BaseModel):
    # --- worker -----------------------------------------------------------------------
    app_id: str = "vc-ct-streams"
    data_dir: Path = Path(".data")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    # deployment (deploy/kubernetes): the host others reach this worker's web server at
    # (Faust's canonical URL, which the group's assignment carries for table routing); empty =
    # web_host. A StatefulSet pod sets its stable name under the headless Service, as it binds
    # web_host 0.0.0.0
    web_advertised_host: str = ""
    web_token: SecretStr | None = Field(
        None, description="bearer token for web views beyond /metrics and health"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # OPSB: "json" = one JSON object per line (ts, level, logger, msg, sku/po/topic/offset)
    log_format: Literal["text", "json"] = "text"
    broker_session_timeout_s: float = 30.0
    # after SIGTERM/SIGINT the worker exits within this long even if a stop step hangs (as
    # after a SIGKILL, which every step survives); 0: wait for Faust's own stop however long
    shutdown_grace_s: float = Field(30.0, ge=0)
    # a worker in a rebalance whose recovery applies nothing, or in a commit that does not
    # return, for this long logs its waiting tasks (at half) and exits 70 to be restarted
    # (runtime/stall.py); not counted while Kafka is unreachable; 0: never
    stall_exit_s: float = Field(300.0, ge=0)
    # stock stage batching: events coalesced per SKU into one table write
    batch_max: int = Field(2000, ge=1)
    batch_within_s: float = Field(0.05, gt=0)
    # RocksDB, per table partition (each is its own database; see runtime/storeopts.py):
    # memory per database <= write buffer x max write buffers + block cache
    rocksdb_write_buffer_mb: int = Field(16, ge=1, le=1024)
    rocksdb_max_write_buffers: int = Field(2, ge=2, le=16)
    rocksdb_block_cache_mb: int = Field(16, ge=1, le=16384)
    # before Faust starts, read the table changelogs in bulk into the local RocksDB state
    # (streams.restore): a cold start at 1M SKUs in about a minute instead of half an hour
    bulk_restore: bool = True
    # the SKU agent's wait to fill a batch (the ingest stage already sends bundles)
    sku_batch_within_s: float = Field(0.02, gt=0)
    # batches the SKU agent applies while earlier ones are still being delivered (their
    # events are acked on delivery: runtime/acks.py); 1: one batch waits for the previous
    sku_batches_in_flight: int = Field(4, ge=1, le=64)
    # ingest re-keys into bundles: one sku-events record per SKU partition per batch
    ingest_bundle_max: int = Field(500, ge=1, le=5000)
    # the cyclic garbage collector's young-generation threshold; the start-up heap is frozen
    # once the worker is ready (runtime/gcpolicy.py: with Python's 700 it held the worker 15%
    # of a backlog). 0: Python's own thresholds, nothing frozen
    gc_young_threshold: int = Field(10_000, ge=0)


class InventoryRuleSettings(BaseModel):
    # --- inventory rules ----------------------------------------------------------------
    debounce_window_s: float = Field(2.0, ge=0)
    debounce_max_wait_s: float = Field(10.0, ge=0)
    debounce_tick_s: float = Field(0.05, gt=0)
    # a storefront sale is published within this long however busy its SKU stays (the quiet
    # window and the max wait would let a fast-changing SKU wait up to the max wait)
    debounce_sale_wait_s: float = Field(0.5, ge=0)
    snapshot_interval_s: float = Field(3600.0, gt=0)
    # the changelog record of "what Amazon was told" waits this long for the SKU's next
    # change to carry it (0: logged at once; see InventoryPublisher._put_marks)
    published_log_delay_s: float = Field(30.0, ge=0)
    # replaying a backlog (records behind > this): a SKU waits catchup_max_wait_s instead
    catchup_lag_records: int = Field(5000, ge=0)
    catchup_max_wait_s: float = Field(60.0, ge=0)
    # deltas published per second at most (Amazon's DF inventory API takes batches)
    delta_budget_per_s: int = Field(5000, ge=1)
    # used when a SKU mapping names no eligible channels / no buffer
    default_amazon_channels: tuple[str, ...] = ()
    default_safety_buffer: int = Field(0, ge=0)


class OpsSettings(BaseModel):
    # --- operations -----------------------------------------------------------------------
    # watchers (ack deadlines, held lines, drift, stale syncs, dead letters) run this often
    ops_watch_interval_s: float = Field(30.0, gt=0)
    # drift: what Amazon was last told vs what the master implies now, beyond this many
    # eaches, for longer than drift_after_s (keep it above debounce_max_wait_s)
    drift_tolerance_units: int = Field(0, ge=0)
    drift_after_s: float = Field(300.0, ge=0)
    # "flow=seconds,...": a flow of streams_last_success_timestamp_seconds whose last success
    # is older raises sync-stale; flows not listed are not judged (event-driven flows may be
    # quiet for hours without anything being wrong)
    sync_stale_s: str = Field(
        "ingest=21600,inventory_publish=7200,po_poll=900",
        pattern=r"^\s*(\w+\s*=\s*\d+(\.\d+)?\s*(,\s*\w+\s*=\s*\d+(\.\d+)?\s*)*)?$",
    )
    # dead letters within this window raise dlq-growth; it resolves one window after the last
    dlq_growth_window_s: float = Field(600.0, gt=0)
    # resolved exceptions leave the table (and the compacted topic) after this long
    exceptions_retention_s: float = Field(14 * 24 * 3600.0, gt=0)
    # the status page links runbooks as this prefix + docs/runbooks/<kind>.md
    runbook_base_url: str = "https://github.com/vc-ct-streams/vc-ct-streams/blob/main/"

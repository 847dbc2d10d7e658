#!/usr/bin/env bash
# Sets up and runs the product locally: Apache Kafka, the commercetools emulator, the SP-API
# sandbox, the worker, and generated traffic with a live view. Ctrl-C stops everything.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1
mkdir -p .run
export STREAMS_CT_API_URL=${STREAMS_CT_API_URL:-http://127.0.0.1:8989}
export STREAMS_CT_AUTH_URL=${STREAMS_CT_AUTH_URL:-$STREAMS_CT_API_URL}
# one local broker (the product's default, 3, is for managed clusters)
export STREAMS_KAFKA_REPLICATION_FACTOR=${STREAMS_KAFKA_REPLICATION_FACTOR:-1}

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  .venv/bin/streams sandbox commercetools down >/dev/null 2>&1 || true
  .venv/bin/streams kafka down || true
}
trap cleanup EXIT INT TERM

.venv/bin/streams kafka up || exit 1
.venv/bin/streams sandbox commercetools up || exit 1
.venv/bin/streams sandbox amazon > .run/sandbox-amazon.log 2>&1 &
pids+=($!)
.venv/bin/streams topics create >/dev/null || exit 1
# master data and stock exist before Amazon's first purchase orders are pulled
.venv/bin/streams demo --seed-only || exit 1
# a demo wants POs within seconds, not the production poll period
STREAMS_PO_POLL_INTERVAL_S=${STREAMS_PO_POLL_INTERVAL_S:-5} .venv/bin/streams worker > .run/worker.log 2>&1 &
pids+=($!)
echo "worker: logs in .run/worker.log, metrics at http://127.0.0.1:6066/metrics"
.venv/bin/streams demo "$@"

#!/usr/bin/env bash
# Sets up and runs the product locally: Apache Kafka, the commercetools emulator, the SP-API
# sandbox, the worker, and generated traffic with a live view (one plain summary at the end
# when stdout is not a terminal). Ctrl-C stops everything it started.
#
# Every run starts from a new world: the emulators keep their data in memory and start
# empty, so the demo's Kafka data and the worker's state must start empty too. Both live in
# DEMO_DIR (default .run/demo), which holds nothing but the demo's own files and is cleared at
# the start of each run; nothing outside it is touched.
#
# Ports (127.0.0.1): STREAMS_KAFKA_LOCAL_PORT (9092), STREAMS_KAFKA_LOCAL_CONTROLLER_PORT
# (9093), STREAMS_CT_MOCK_PORT (8989), STREAMS_SANDBOX_PORT (8787), STREAMS_WEB_PORT (6066).
# The worker and the demo talk to these services only, whatever else the environment names.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1

DEMO_DIR=${DEMO_DIR:-.run/demo}
if [[ $DEMO_DIR != .run/?* || $DEMO_DIR == *..* ]]; then
  echo "demo: DEMO_DIR must be a directory under .run/ (got '$DEMO_DIR')" >&2; exit 2
fi
export DEMO_DIR
export STREAMS_KAFKA_LOCAL_PORT=${STREAMS_KAFKA_LOCAL_PORT:-9092}
export STREAMS_KAFKA_LOCAL_CONTROLLER_PORT=${STREAMS_KAFKA_LOCAL_CONTROLLER_PORT:-9093}
export STREAMS_CT_MOCK_PORT=${STREAMS_CT_MOCK_PORT:-8989}
export STREAMS_SANDBOX_PORT=${STREAMS_SANDBOX_PORT:-8787}
export STREAMS_WEB_PORT=${STREAMS_WEB_PORT:-6066}
export STREAMS_KAFKA_LOCAL_DIR=$DEMO_DIR/kafka STREAMS_DATA_DIR=$DEMO_DIR/data
export STREAMS_KAFKA_BOOTSTRAP=127.0.0.1:$STREAMS_KAFKA_LOCAL_PORT
export STREAMS_KAFKA_SECURITY_PROTOCOL=PLAINTEXT
# one local broker (the product's default, 3, is for managed clusters)
export STREAMS_KAFKA_REPLICATION_FACTOR=1
export STREAMS_CT_API_URL=http://127.0.0.1:$STREAMS_CT_MOCK_PORT
export STREAMS_CT_AUTH_URL=$STREAMS_CT_API_URL
export STREAMS_SANDBOX_HOST=127.0.0.1
export STREAMS_SPAPI_ENDPOINT=http://127.0.0.1:$STREAMS_SANDBOX_PORT
export STREAMS_SPAPI_LWA_URL=$STREAMS_SPAPI_ENDPOINT/auth/o2/token
export STREAMS_WEB_HOST=127.0.0.1
# the demo invoices what Amazon accepted (off by default in production: a finance decision)
export STREAMS_INVOICES_ENABLED=${STREAMS_INVOICES_ENABLED:-true}
# Direct Fulfillment customer orders: the sandbox serves them, the demo adds one with each PO
export STREAMS_DF_ENABLED=${STREAMS_DF_ENABLED:-true}
export STREAMS_DF_POLL_INTERVAL_S=${STREAMS_DF_POLL_INTERVAL_S:-5}  # a short demo sees them soon

# a previous run that did not get to clean up: stop its broker and emulator (by their pid
# files), so that nothing of its world survives
.venv/bin/streams kafka down >/dev/null 2>&1 || true
.venv/bin/streams sandbox commercetools down >/dev/null 2>&1 || true
taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for var in STREAMS_KAFKA_LOCAL_PORT STREAMS_KAFKA_LOCAL_CONTROLLER_PORT STREAMS_CT_MOCK_PORT \
           STREAMS_SANDBOX_PORT STREAMS_WEB_PORT; do
  if taken "${!var}"; then
    echo "demo: port ${!var} is taken by another process; set $var to a free port" >&2; exit 1
  fi
done
if [[ -e $DEMO_DIR ]]; then
  echo "demo: starting from a new world: clearing $DEMO_DIR (the demo's own Kafka data and worker state)"
  rm -rf -- "$DEMO_DIR"
fi
mkdir -p "$DEMO_DIR"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  .venv/bin/streams sandbox commercetools down >/dev/null 2>&1 || true
  .venv/bin/streams kafka down || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # then the EXIT trap cleans up, once

.venv/bin/streams kafka up || exit 1
# like commercetools, the emulator shows a storefront order on its inventory entries a few
# seconds late (and sends no inventory message for it)
export CT_MOCK_ORDER_STOCK_DELAY_MS=${CT_MOCK_ORDER_STOCK_DELAY_MS:-3000}
.venv/bin/streams sandbox commercetools up || exit 1
.venv/bin/streams sandbox amazon > "$DEMO_DIR/sandbox-amazon.log" 2>&1 &
pids+=($!)
.venv/bin/streams topics create >/dev/null || exit 1
# master data and stock exist before Amazon's first purchase orders are pulled
.venv/bin/streams demo --seed-only || exit 1
# a demo wants POs within seconds, not the production poll period
STREAMS_PO_POLL_INTERVAL_S=${STREAMS_PO_POLL_INTERVAL_S:-5} .venv/bin/streams worker > "$DEMO_DIR/worker.log" 2>&1 &
pids+=($!)
export DEMO_WORKER_PID=$!  # the demo stops, saying so, when the worker exits
echo "worker: logs in $DEMO_DIR/worker.log, metrics at http://127.0.0.1:$STREAMS_WEB_PORT/metrics"
.venv/bin/streams demo "$@"

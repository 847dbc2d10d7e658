#!/usr/bin/env bash
# Smoke test of `make demo` (run by .ci/run after the test suite): the demo twice in a row,
# DEMO_SMOKE_DURATION s of traffic each, on ports of its own (not the test services' 29092
# and 28989), each writing its summary as JSON. Then checks that both runs, and so the second
# one too, are healthy: no ct-command-failed exceptions, POs acknowledged, and availability
# published with p99 beyond the debounce rule within DEMO_SMOKE_P99_S.
set -uo pipefail
cd "$(dirname "$0")/.."
export DEMO_DIR=.run/demo-smoke
# below the ephemeral range (32768+), where another test's free port could take one meanwhile
export STREAMS_KAFKA_LOCAL_PORT=${DEMO_SMOKE_KAFKA_PORT:-24092}
export STREAMS_KAFKA_LOCAL_CONTROLLER_PORT=${DEMO_SMOKE_KAFKA_CONTROLLER_PORT:-24093}
export STREAMS_CT_MOCK_PORT=${DEMO_SMOKE_CT_PORT:-24989}
export STREAMS_SANDBOX_PORT=${DEMO_SMOKE_SANDBOX_PORT:-24787}
export STREAMS_WEB_PORT=${DEMO_SMOKE_WEB_PORT:-24066}
duration=${DEMO_SMOKE_DURATION:-30}
results=.run/demo-smoke-results
rm -rf -- "$results"; mkdir -p "$results"

for run in 1 2; do
  echo "== demo smoke: run $run of 2 (${duration}s of traffic)"
  # through a pipe: the plain summary, as in any CI log
  scripts/demo.sh --duration "$duration" --json "$results/run$run.json" </dev/null \
    | tee "$results/run$run.out"
  rc=${PIPESTATUS[0]}
  for f in "$DEMO_DIR"/*.log; do  # the next run clears DEMO_DIR
    [[ -e $f ]] && cp "$f" "$results/run$run-$(basename "$f")"
  done
  if [[ $rc != 0 || ! -s $results/run$run.json ]]; then
    echo "demo smoke: run $run failed (exit $rc); logs in $results/" >&2
    tail -n 40 "$results/run$run-worker.log" >&2 2>/dev/null
    exit 1
  fi
done
.venv/bin/python -m streams.demo.check "$results/run1.json" "$results/run2.json" \
  --p99-bound "${DEMO_SMOKE_P99_S:-10}"

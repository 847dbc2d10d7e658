#!/usr/bin/env bash
# Sets up, starts the services the tests use (Apache Kafka, the commercetools emulator) on
# ports of their own, runs lint, types and the whole test suite, and stops what it started.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev || exit 1

export STREAMS_KAFKA_LOCAL_PORT=${TEST_KAFKA_PORT:-29092}
export STREAMS_KAFKA_LOCAL_CONTROLLER_PORT=${TEST_KAFKA_CONTROLLER_PORT:-29093}
export STREAMS_KAFKA_LOCAL_DIR=.run/kafka-test
export STREAMS_CT_MOCK_PORT=${TEST_CT_PORT:-28989}
export STREAMS_KAFKA_REPLICATION_FACTOR=1  # one local broker
rm -rf .run/kafka-test

cleanup() {
  .venv/bin/streams kafka down >/dev/null 2>&1 || true
  .venv/bin/streams sandbox commercetools down --port "$STREAMS_CT_MOCK_PORT" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

.venv/bin/streams kafka up || exit 1
.venv/bin/streams sandbox commercetools up --port "$STREAMS_CT_MOCK_PORT" || exit 1
export STREAMS_KAFKA_BOOTSTRAP=127.0.0.1:$STREAMS_KAFKA_LOCAL_PORT
export STREAMS_CT_API_URL=http://127.0.0.1:$STREAMS_CT_MOCK_PORT
export STREAMS_CT_AUTH_URL=$STREAMS_CT_API_URL
# the broker is this run's own: each test module's topics are deleted after it (tests/conftest.py)
export STREAMS_TEST_DROP_TOPICS=1

echo "== ruff"; .venv/bin/ruff check . || exit 1
echo "== mypy"; .venv/bin/mypy || exit 1
echo "== pytest"
# a hung test must fail the run with output, not eat the CI's time limit
timeout --signal=TERM --kill-after=60 "${TEST_TIMEOUT:-75m}" .venv/bin/pytest -p no:cacheprovider "$@"
rc=$?
if [[ $rc == 5 ]]; then echo "pytest collected no tests: that is a failure" >&2; exit 1; fi
exit $rc

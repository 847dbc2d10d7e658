#!/usr/bin/env bash
# Installs everything the product needs on a fresh machine; safe to re-run (each step is
# skipped when already done). Usage: scripts/setup.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0; [[ "${1:-}" == "--dev" ]] && DEV=1

need() { command -v "$1" >/dev/null 2>&1 || { echo "setup: $1 is required ($2)" >&2; exit 1; }; }
need python3.11 "Python 3.11" 2>/dev/null || need python3 "Python 3.11"
need java "Java 17+ runs the local Kafka broker"
need mvn "Maven fetches Apache Kafka's jars"
need node "Node.js 20 runs the commercetools emulator"
need npm "npm installs the commercetools emulator"

PY=$(command -v python3.11 || command -v python3)
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
extras=""; [[ $DEV == 1 ]] && extras="[dev]"
stamp=".venv/.installed-$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)${extras:+-dev}"
# a dev install has everything a plain one has: `make demo` after `make test` installs nothing
if [[ ! -f "$stamp" && ! -f "$stamp-dev" ]]; then
  echo "setup: installing the package and its pinned dependencies"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  # the runtime dependencies at the image's versions (requirements.lock, scripts/lock.py)
  .venv/bin/python -m pip install -q --disable-pip-version-check -c requirements.lock -e ".${extras}"
  touch "$stamp"
fi

echo "setup: Apache Kafka jars (kafka/pom.xml -> .cache/kafka/libs)"
.venv/bin/streams kafka fetch >/dev/null
echo "setup: commercetools emulator (npm ci -> .cache/ctmock)"
.venv/bin/python -c "from streams.sandbox.ctmock import install; install()"

# the tests' Prometheus tools: promtool and the server itself (Debian package prometheus:
# the rules' unit tests, a real Prometheus scraping a worker) and amtool (package
# prometheus-alertmanager, ~10 MB: checks the example Alertmanager routing)
if [[ $DEV == 1 ]]; then
  pkgs=()
  { command -v promtool && command -v prometheus; } >/dev/null 2>&1 || pkgs+=(prometheus)
  command -v amtool >/dev/null 2>&1 || pkgs+=(prometheus-alertmanager)
  if (( ${#pkgs[@]} )); then
    echo "setup: ${pkgs[*]} (Debian packages: promtool, prometheus, amtool)"
    if [[ $(id -u) == 0 ]]; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null) \
        || echo "setup: could not install ${pkgs[*]}; the tests needing them will fail" >&2
    else
      echo "setup: run 'sudo apt-get install ${pkgs[*]}' for the Prometheus tests" >&2
    fi
  fi
fi
echo "setup: done"

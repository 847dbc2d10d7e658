# syntax=docker/dockerfile:1.7
# The stream processor image: `streams worker` by default; docker-compose.yml also runs
# `streams topics create` and `streams sandbox amazon` from it, deploy/kubernetes the worker.
#   docker build -t vc-ct-streams:local .
# Built from the project's wheel with the exact versions of requirements.lock (written from the
# tested venv by scripts/lock.py). Every locked dependency has a binary wheel for CPython 3.11
# on Linux, so neither stage compiles anything and the final one has no build tools: the
# wheels are installed without a resolver or an index, then pip, setuptools and wheel removed.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md MANIFEST.in requirements.lock ./
# src/streams/schemas and src/streams/_data/* link to these: the wheel gets them as package data
COPY schemas ./schemas
COPY prometheus/alerts.yml ./prometheus/alerts.yml
COPY kafka/pom.xml ./kafka/pom.xml
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && pip download --no-cache-dir --only-binary=:all: --no-deps --dest /wheels \
       -r requirements.lock

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# the wheels are bind-mounted from the build stage: none of them stays in a layer
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    --mount=type=bind,from=build,source=/src/requirements.lock,target=/tmp/requirements.lock \
    python -m pip install --no-cache-dir --no-index --find-links /wheels --no-deps \
       --only-binary=:all: --disable-pip-version-check \
       -r /tmp/requirements.lock /wheels/vc_ct_streams-*.whl \
    && python -m pip check \
    && python -m pip uninstall --yes --disable-pip-version-check setuptools wheel pip \
    && groupadd --system --gid 10001 streams \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin streams \
    && mkdir -p /app/.data \
    && chown 10001:0 /app/.data \
    && chmod 0770 /app/.data

WORKDIR /app
# numeric, so a runAsNonRoot policy can verify it without reading /etc/passwd
USER 10001:10001
# RocksDB tables live in STREAMS_DATA_DIR (a volume in docker-compose.yml, a
# PersistentVolumeClaim in deploy/kubernetes). Inside a container the web views listen on all
# interfaces to be scraped and probed; the default, 127.0.0.1, stays for everything else.
ENV STREAMS_DATA_DIR=/app/.data \
    STREAMS_WEB_HOST=0.0.0.0
EXPOSE 6066

CMD ["streams", "worker"]

# The stream processor image: `streams worker` by default; docker-compose.yml also runs
# `streams topics create` and `streams sandbox amazon` from it.
#   docker build -t vc-ct-streams:local .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Installed editable, in place: the package reads files of the repository layout at run
# time (Amazon's models from schemas/amazon, the commercetools mock's package files).
COPY pyproject.toml README.md ./
COPY src ./src
COPY schemas ./schemas
RUN pip install -e . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin streams \
    && mkdir -p /app/.data /app/.run /app/.cache \
    && chown streams /app/.data /app/.run /app/.cache

USER streams
# RocksDB tables live here (a volume in docker-compose.yml keeps them across restarts).
# Inside a container the web views must listen on all interfaces to be scraped; the
# default, 127.0.0.1, stays for everything that runs outside a container.
ENV STREAMS_DATA_DIR=/app/.data \
    STREAMS_WEB_HOST=0.0.0.0
EXPOSE 6066

CMD ["streams", "worker"]

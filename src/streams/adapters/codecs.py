"""Wire formats: orjson everywhere, and the dead-letter envelope."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson

dumps = orjson.dumps
loads = orjson.loads


def utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dlq_record(
    raw: bytes | None,
    error: str,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp: float | None,
    failed_at: float,
) -> dict[str, Any]:
    """The ``<topic>.dlq`` value: the raw record, why it failed and where it came from."""
    text: str | None
    try:
        text = raw.decode("utf-8") if raw is not None else None
    except UnicodeDecodeError:
        text = None
    return {
        "error": error,
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "sourceTimestamp": utc_iso(timestamp) if timestamp else None,
        "failedAt": utc_iso(failed_at),
        "valueBase64": base64.b64encode(raw).decode("ascii") if raw is not None else None,
        "valueText": text,
    }


def reason_class(error: str) -> str:
    """A low-cardinality label for a DLQ reason (metrics must not carry free text)."""
    if error.startswith("not JSON"):
        return "not_json"
    if "unknown" in error:
        return "unknown_type"
    if "missing" in error:
        return "missing_field"
    if " must be " in error:
        return "wrong_type"
    if "out of range" in error or "oversize" in error:
        return "out_of_range"
    if "fetch" in error:
        return "unresolvable"
    return "invalid"

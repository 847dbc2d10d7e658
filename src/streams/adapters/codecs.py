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


# Kafka's default max.message.bytes is ~1 MB: a larger record could not even be forwarded
MAX_RECORD_BYTES = 900_000
# a dead letter keeps at most this much of the raw value (oversize records are truncated)
DLQ_KEEP_BYTES = 64 * 1024


def decode_record(raw: bytes | None, what: str) -> Any:
    """JSON of one input record, or ValueError with the reason (the DLQ's text).

    orjson refuses NaN/Infinity, and turns integers beyond 64 bits into floats, which the
    strict models then reject: parsing once here keeps what is validated and what is
    forwarded the same value.
    """
    if raw is None:
        raise ValueError(f"empty value (tombstone) on {what}")
    if len(raw) > MAX_RECORD_BYTES:
        raise ValueError(f"oversize record: {len(raw)} bytes (at most {MAX_RECORD_BYTES})")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None


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
    size = len(raw) if raw is not None else 0
    truncated = raw is not None and size > DLQ_KEEP_BYTES
    if raw is not None and truncated:
        raw = raw[:DLQ_KEEP_BYTES]  # the full record would not fit in a Kafka record
    try:
        text = raw.decode("utf-8") if raw is not None and not truncated else None
    except UnicodeDecodeError:
        text = None
    extra: dict[str, Any] = {"valueTruncated": True, "valueBytes": size} if truncated else {}
    return {
        "error": error,
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "sourceTimestamp": utc_iso(timestamp) if timestamp else None,
        "failedAt": utc_iso(failed_at),
        "valueBase64": base64.b64encode(raw).decode("ascii") if raw is not None else None,
        "valueText": text,
        **extra,
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


def redact(text: str, secrets: list[str], basic_user: str | None = None) -> str:
    """``text`` with every secret masked, also URL-encoded and inside HTTP Basic credentials
    (an endpoint that echoes a request back must not leak them into a record)."""
    import urllib.parse

    forms: list[str] = []
    for s in secrets:
        if not s:
            continue
        forms += [s, urllib.parse.quote(s, safe=""), urllib.parse.quote_plus(s)]
        if basic_user is not None:
            forms.append(base64.b64encode(f"{basic_user}:{s}".encode()).decode())
    for f in sorted(set(forms), key=len, reverse=True):
        text = text.replace(f, "****")
    return text

"""How a reported exception merges into the ``exceptions`` table, and when a resolved one
leaves it (pure: the exceptions agent applies these)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.domain.watch import parse_iso


def merge(stored: Mapping[str, Any] | None, incoming: Mapping[str, Any]) -> dict[str, Any] | None:
    """The table's new value for one exception id, or None when nothing changes.

    Raised again while open: count + 1, last seen, root cause and severity (an escalation)
    from the new report, first seen kept. Resolved: status and when. Raised after it was
    resolved: it reopens (count + 1, first seen kept). A redelivered report changes nothing.
    """
    status = incoming.get("status", "open")
    at = str(incoming.get("lastSeen") or "")
    if status == "resolved":
        if stored is None:
            return {**incoming, "resolvedAt": at}
        if stored.get("status") == "resolved":
            return None
        out = {**stored, "status": "resolved", "resolvedAt": at}
        if incoming.get("resolution"):
            out["resolution"] = incoming["resolution"]
        return out
    if stored is None:
        out = {**incoming, "status": "open"}
        out["count"] = max(1, int(incoming.get("count") or 1))
        return out
    if stored.get("status") == "open" and (
        at <= str(stored.get("lastSeen") or "")
        and incoming.get("rootCause") == stored.get("rootCause")
        and incoming.get("severity") == stored.get("severity")
    ):
        return None  # redelivered (or older than what is stored)
    out = {**stored, **incoming}
    out.update(
        status="open",
        count=int(stored.get("count") or 1) + 1,
        firstSeen=stored.get("firstSeen") or incoming.get("firstSeen"),
        lastSeen=max(at, str(stored.get("lastSeen") or "")),
    )
    out.pop("resolution", None)
    if stored.get("status") == "resolved":
        out.pop("resolvedAt", None)
        out["reopenedAt"] = at
    return out


def expired(rec: Mapping[str, Any], now: float, retention_s: float) -> bool:
    """A resolved exception older than the retention: dropped from the table."""
    if rec.get("status") != "resolved":
        return False
    when = parse_iso(str(rec.get("resolvedAt") or rec.get("lastSeen") or ""))
    return when is not None and now - when >= retention_s

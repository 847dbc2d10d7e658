"""How a SKU's state is stored: the dirty marker the scans test without decoding, and the
stock of one inventory entry (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# order and writes no spaces), so the scans that skip states with nothing left to do (the
# restart scan, the drift watcher) test a prefix instead of decoding a million states.
CLEAN_PREFIX = b'{"dirty":0,'
DIRTY_PREFIX = b'{"dirty":1,'
# states stored before the marker: clean exactly when they end with a null changed_at (that
# format put open holds and a pending re-read after it)
LEGACY_CLEAN_TAIL = b'"ca":null}'


def stored_clean(raw: bytes) -> bool:
    """Whether a stored (compact JSON) SkuState has nothing to publish, no open storefront
    hold and no re-read pending, without decoding it. False means: decode and look."""
    if raw.startswith(CLEAN_PREFIX):
        return True
    if raw.startswith(DIRTY_PREFIX):
        return False
    return raw.endswith(LEGACY_CLEAN_TAIL)


@dataclass(slots=True)
class EntryStock:
    entry_id: str
    version: int
    available: int
    on_stock: int
    seq: int | None = None
    at: str | None = None
    # tags of the last messages applied (domain.inventory.message_tag; ids in older states)
    recent_ids: list[int | str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "e": self.entry_id,
            "v": self.version,
            "a": self.available,
            "q": self.on_stock,
            "s": self.seq,
            "at": self.at,
            "r": self.recent_ids,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EntryStock:
        return cls(d["e"], d["v"], d["a"], d["q"], d.get("s"), d.get("at"), list(d.get("r", ())))

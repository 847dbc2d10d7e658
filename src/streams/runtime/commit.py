"""Which offset a partition may be committed to: its records fetched since the last seek, in
order, and those processed (see streams.runtime.consumer)."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field

from faust.types import TP


@dataclass
class Tracked:
    """One partition's records fetched since its last seek, for the commit."""

    start: int | None  # the offset it was sought to (None: not known, the first fetched)
    next: int | None = None  # one past the last record fetched
    fetched: deque[int] = field(default_factory=deque)  # ascending, not yet committed past
    acked: set[int] = field(default_factory=set)  # of ``fetched``, those processed
    held: tuple[int | None, float] = (None, 0.0)  # the commit point, since when
    warned: float = 0.0

    def commit_point(self) -> int | None:
        """The first fetched record not yet processed, or one past the last fetched."""
        fetched, acked = self.fetched, self.acked
        while fetched and fetched[0] in acked:
            acked.discard(fetched.popleft())
        if self.next is None:
            return None
        return fetched[0] if fetched else self.next

    def on_fetched(self, offsets: list[int]) -> None:
        if self.next is not None:
            offsets = [o for o in offsets if o >= self.next]
        if offsets:
            self.fetched.extend(offsets)
            self.next = offsets[-1] + 1

    def on_ack(self, offset: int) -> bool:
        """A processed record. Also one fetched before the last seek (processed in this
        generation all the same): its copy read again after the seek may be dropped by
        Faust as already read, so this ack is the one that counts."""
        if self.start is not None and offset < self.start:
            return False
        if self.fetched:
            if offset < self.fetched[0]:
                return False
        elif self.next is not None and offset < self.next:
            return False
        self.acked.add(offset)
        return True


class ReadOffsets(defaultdict[TP, "int | None"]):
    """Faust's ``_read_offset`` (the last offset delivered, per partition), except that the
    fetch loop cannot move it to a record not fetched since the partition's last seek: a
    batch fetched before the seek and still being delivered after it would otherwise make
    Faust drop the records read again after the seek as already read - among them those
    the rebalance cleared from the agents' queues, never processed."""

    def __init__(self, tracked: dict[TP, Tracked]) -> None:
        super().__init__(lambda: None)
        self._tracked_ref = tracked

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        t = self._tracked_ref.get(tp)
        if t is not None and offset is not None and (t.next is None or offset >= t.next):
            return  # not fetched since the seek: a record of an earlier fetch
        super().__setitem__(tp, offset)

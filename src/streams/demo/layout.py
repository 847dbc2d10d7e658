"""Text layout of the demo's live view for any terminal size, 80x24 up.

Pure string work, so it is tested exactly: every line fits the width, the whole fits the
height, and ids (SKUs, POs, exception refs) are never cut so two become alike. Tables size
their columns themselves (rich's tables shrink every column evenly when short of room, ids
included): an id column keeps its full width, or the part that tells its ids apart; text
columns give way first, then low-priority columns are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.cells import cell_len

ELLIPSIS = "…"
GAP = 2  # spaces between columns
ESSENTIAL = 8  # columns of this priority and up stay while ids can still be shortened


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells, ending in an ellipsis when cut."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return text
    out = ""
    for ch in text:
        if cell_len(out + ch) > width - 1:
            break
        out += ch
    return out + ELLIPSIS


def pad(text: str, width: int) -> str:
    return text + " " * max(0, width - cell_len(text))


def distinct(ids: Sequence[str], width: int) -> list[str]:
    """``ids`` as shown in ``width`` cells, each still telling itself apart from the others.

    Whole when they fit. Otherwise their shared prefix goes first (``…0017`` for
    ``SKU-00017`` beside ``SKU-00012``), then more from the left, but never so much that
    two different ids read the same: then the result is wider than ``width``, and the
    caller must make room.
    """
    if all(cell_len(i) <= width for i in ids):
        return list(ids)
    unique = set(ids)
    longest = max(len(i) for i in ids)
    # the shortest tail (from the right) that still tells every id apart
    keep = longest
    for k in range(1, longest + 1):
        if len({i[-k:] for i in unique}) == len(unique):
            keep = k
            break
    keep = max(keep, width - 1)
    return [i if len(i) <= keep + 1 else ELLIPSIS + i[-keep:] for i in ids]


@dataclass
class Column:
    header: str
    is_id: bool = False  # never cut to ambiguity
    flex: bool = False  # free text: cut first, and takes what room is left
    priority: int = 0  # the lowest are left out first when short; ESSENTIAL and up last


@dataclass
class Section:
    title: str
    columns: list[Column]
    rows: list[list[str]] = field(default_factory=list)
    empty: str = "-"

    def lines(self, width: int, max_rows: int) -> list[str]:
        """Title, header and up to ``max_rows`` rows, every line at most ``width`` cells."""
        rows = self.rows[:max_rows]
        keep = list(range(len(self.columns)))
        while True:
            # first leave out what is not essential, then show ids by their telling part,
            # and only then leave out essentials too
            widths, cells = self._widths(keep, rows, width, cut_ids=False)
            if self._fits(widths, width):
                break
            optional = [i for i in keep if self.columns[i].priority < ESSENTIAL]
            if optional:
                keep.remove(min(reversed(optional), key=lambda i: self.columns[i].priority))
                continue
            widths, cells = self._widths(keep, rows, width, cut_ids=True)
            if self._fits(widths, width) or len(keep) == 1:
                break
            keep.remove(min(reversed(keep), key=lambda i: self.columns[i].priority))
        head = [pad(fit(self.columns[i].header, w), w) for i, w in zip(keep, widths, strict=True)]
        out = [fit(self.title, width), fit((" " * GAP).join(head).rstrip(), width)]
        for r in range(len(rows)):
            parts = [pad(c[r], w) for c, w in zip(cells, widths, strict=True)]
            out.append(fit((" " * GAP).join(parts).rstrip(), width))
        if not rows:
            out.append(fit(self.empty, width))
        return out

    @staticmethod
    def _fits(widths: list[int], width: int) -> bool:
        return sum(widths) + GAP * (len(widths) - 1) <= width

    def _widths(
        self, keep: list[int], rows: list[list[str]], width: int, cut_ids: bool
    ) -> tuple[list[int], list[list[str]]]:
        cols = [self.columns[i] for i in keep]
        cells = [[r[i] for r in rows] for i in keep]
        natural = [
            max([cell_len(c.header), *map(cell_len, col)])
            for c, col in zip(cols, cells, strict=True)
        ]
        room = width - GAP * (len(cols) - 1)
        fixed = sum(n for c, n in zip(cols, natural, strict=True) if not c.flex)
        widths = list(natural)
        # free text takes what is left (at least 8 cells, else the column is left out later)
        for j, c in enumerate(cols):
            if c.flex:
                widths[j] = max(8, min(natural[j], room - fixed))
        # then headers of other text columns give way (a header may be cut, a value not)
        over = sum(widths) - room
        for j, c in enumerate(cols):
            if over > 0 and not c.is_id and not c.flex:
                longest_value = max(map(cell_len, cells[j]), default=1)
                cut = min(over, widths[j] - max(longest_value, 3))
                widths[j] -= max(0, cut)
                over -= max(0, cut)
        # ids last: shown by the part that tells them apart (their header may be cut)
        for j, c in enumerate(cols):
            if cut_ids and over > 0 and c.is_id and cells[j]:
                shown = distinct(cells[j], max(1, widths[j] - over))
                new = max(map(cell_len, shown))
                over -= widths[j] - new
                widths[j], cells[j] = new, shown
        cells = [
            [v if c.is_id else fit(v, w) for v in col]
            for c, col, w in zip(cols, cells, widths, strict=True)
        ]
        return widths, cells


def share(available: int, wants: Sequence[int]) -> list[int]:
    """Split ``available`` rows among sections wanting ``wants``: one each in turn, so a
    short terminal shows a little of everything rather than all of one."""
    got = [0] * len(wants)
    left = max(0, available)
    while left > 0:
        moved = False
        for i, want in enumerate(wants):
            if left > 0 and got[i] < want:
                got[i] += 1
                left -= 1
                moved = True
        if not moved:
            break
    return got


Line = list[tuple[str, str]]  # (text, rich style) segments of one line


def line_len(line: Line) -> int:
    return sum(cell_len(text) for text, _ in line)


def side_by_side(left: list[Line], right: list[Line], width: int) -> list[Line]:
    """Two blocks of lines in two columns: the left one padded to ``width`` cells, a gap."""
    n = max(len(left), len(right))
    left = left + [[] for _ in range(n - len(left))]
    right = right + [[] for _ in range(n - len(right))]
    out: list[Line] = []
    for a, b in zip(left, right, strict=True):
        gap = " " * (width - line_len(a) + GAP)
        out.append([*a, (gap, ""), *b] if b else a)
    return out


def join_fitting(items: Sequence[str], width: int, sep: str = ", ") -> str:
    """As many whole items as fit in ``width``, then ``+N more``: ids are never cut."""
    out: list[str] = []
    for n, item in enumerate(items):
        rest = len(items) - n - 1
        tail = f"{sep}+{rest} more" if rest else ""
        candidate = sep.join([*out, item])
        if cell_len(candidate + tail) > width:
            more = len(items) - n
            return (sep.join(out) + f"{sep if out else ''}+{more} more") if out else f"+{more}"
        out.append(item)
    return sep.join(out)

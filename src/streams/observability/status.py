"""What the status page and the JSON API read: a Protocol, so that ``observability`` does not
import the flows that serve it (``agents.ops`` implements it; ``app.py`` registers it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import faust

from streams.config import Settings
from streams.domain.availability import Defaults
from streams.domain.warehouse_policy import ChannelPolicy
from streams.observability import metrics as M


class StatusSource(Protocol):
    @property
    def app(self) -> faust.App: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def worker(self) -> str:
        """``host:port`` of this worker, named in every answer."""

    @property
    def clock(self) -> Callable[[], float]: ...

    @property
    def exceptions(self) -> Any:
        """The global ``exceptions`` table (id -> JSON)."""

    @property
    def skus(self) -> Any | None:
        """The ``skus`` table; None when the inventory flow does not run here."""

    @property
    def pos(self) -> Any | None:
        """The ``pos`` table; None when the purchase-order flow does not run here."""

    @property
    def shipments(self) -> Any | None:
        """The ASN flow's ``shipments`` table; None when it does not run here."""

    @property
    def defaults(self) -> Defaults: ...

    def policy(self) -> ChannelPolicy | None:
        """The warehouse policy the inventory flow publishes by now."""

    def all_exceptions(self) -> dict[str, dict[str, Any]]: ...

    def runbook_url(self, rec: Mapping[str, Any]) -> str: ...

    async def resolve_by_hand(self, rec: Mapping[str, Any], note: str) -> None: ...


def samples(metric: Any) -> Iterator[tuple[dict[str, str], float]]:
    """``(labels, value)`` of each sample of a metric this worker keeps (no ``_created``)."""
    for family in metric.collect():
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                yield sample.labels, sample.value


def gauge_open(table: Mapping[str, Mapping[str, Any]]) -> None:
    """``streams_exceptions_open`` from the table: open exceptions by kind, owner, severity."""
    counts: Counter[tuple[str, str, str]] = Counter(
        (str(r.get("kind")), str(r.get("owner")), str(r.get("severity")))
        for r in table.values()
        if r.get("status") == "open"
    )
    M.EXCEPTIONS_OPEN.clear()
    for (kind, owner, severity), n in counts.items():
        M.EXCEPTIONS_OPEN.labels(kind, owner, severity).set(n)

"""The purchase-order record (table ``pos``): one typed view of what the PO flow stores.

The PO flow is its only writer; the ASN flow, the watchers, sales orders, the web view and
the report read it. Every reader asks :meth:`PurchaseOrderRecord.is_acknowledged` rather
than reading ``ack``/``tx``/``state`` on its own, so "acknowledged" means one thing:

    Amazon has, or will have, an acknowledgement of the PO's *current revision*: ours was
    submitted for that revision and its transaction has not failed, or Amazon itself shows
    the PO Acknowledged (the stored state always belongs to the current revision).

Amazon answers only Processing/Failure for acknowledgements, so Success is not waited for.

The stored JSON keeps the layout the flow always wrote (readers of old records keep working)
and adds ``"v"``, the schema version; a record without one is version 0 and loads the same.
Lines and decisions stay JSON (``PoLine`` / ``LineDecision`` dumps): models are built only
where a rule needs them, never once per decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

SCHEMA_VERSION = 1

RevisionChange = Literal["duplicate", "stale", "state", "new"]


@dataclass(frozen=True)
class AckState:
    """The acknowledgement built for ``rev`` (``hash`` of its bytes) and what became of it."""

    rev: str | None = None
    hash: str | None = None
    built_at: float | None = None
    txid: str | None = None
    submitted_at: float | None = None
    error: str | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> AckState:
        d = d or {}
        return cls(
            rev=d.get("rev"),
            hash=d.get("hash"),
            built_at=d.get("builtAt"),
            txid=d.get("txid"),
            submitted_at=d.get("submittedAt"),
            error=d.get("error"),
        )

    def to_json(self) -> dict[str, Any]:
        pairs = (
            ("rev", self.rev), ("hash", self.hash), ("builtAt", self.built_at),
            ("txid", self.txid), ("submittedAt", self.submitted_at), ("error", self.error),
        )  # fmt: skip
        return {k: v for k, v in pairs if v is not None}


@dataclass(frozen=True)
class TxState:
    """Amazon's transaction for the last submitted acknowledgement."""

    id: str | None = None
    status: str | None = None  # Processing, Success, Failure
    checked_at: float | None = None
    errors: tuple[Mapping[str, Any], ...] | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> TxState:
        d = d or {}
        errors = d.get("errors")
        return cls(
            id=d.get("id"),
            status=d.get("status"),
            checked_at=d.get("checkedAt"),
            errors=tuple(errors) if errors is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.id is not None:
            out["id"] = self.id
        if self.status is not None:
            out["status"] = self.status
        if self.errors is not None:
            out["errors"] = [dict(e) for e in self.errors]
        if self.checked_at is not None:
            out["checkedAt"] = self.checked_at
        return out


@dataclass
class PurchaseOrderRecord:
    """One PO as the flow knows it. Mutated only by its ``on_*`` methods (the PO flow)."""

    number: str | None = None
    rev: str | None = None
    state: str | None = None  # Amazon's purchaseOrderState of the current revision
    order: dict[str, Any] | None = None  # the SP-API Order as received
    lines: dict[str, dict[str, Any]] = field(default_factory=dict)  # seq -> PoLine JSON
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)  # seq -> LineDecision
    po_date: float | None = None
    received_at: float | None = None
    ack: AckState = field(default_factory=AckState)
    tx: TxState = field(default_factory=TxState)
    close: dict[str, Any] | None = None  # the close plan of a Closed PO (po_close)
    received: dict[str, Any] | None = None  # what Amazon received, per line
    version: int = SCHEMA_VERSION  # the schema version the record was read with
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    _KNOWN = frozenset(
        ("v", "po", "rev", "state", "order", "lines", "decisions", "poDate", "receivedAt",
         "ack", "tx", "close", "received")
    )  # fmt: skip

    # --- storage ----------------------------------------------------------------------
    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PurchaseOrderRecord:
        """A stored record of any version (version 0: written before ``"v"`` existed). A
        newer one (a worker rolled back) loads with what this version knows, its other keys
        kept: failing would stop the partition, and versions only add keys."""
        version = d.get("v", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"pos record with a bad schema version {version!r}")
        return cls(
            number=d.get("po"),
            rev=d.get("rev"),
            state=d.get("state"),
            order=d.get("order"),
            lines=dict(d.get("lines") or {}),
            decisions=dict(d.get("decisions") or {}),
            po_date=d.get("poDate"),
            received_at=d.get("receivedAt"),
            ack=AckState.from_json(d.get("ack")),
            tx=TxState.from_json(d.get("tx")),
            close=d.get("close"),
            received=d.get("received"),
            version=version,
            extra={k: v for k, v in d.items() if k not in cls._KNOWN},
        )

    def to_json(self) -> dict[str, Any]:
        """The stored form, always of the current schema version."""
        out: dict[str, Any] = {"v": SCHEMA_VERSION, **self.extra}
        pairs = (
            ("po", self.number), ("rev", self.rev), ("state", self.state),
            ("order", self.order), ("poDate", self.po_date), ("receivedAt", self.received_at),
            ("close", self.close), ("received", self.received),
        )  # fmt: skip
        out.update({k: v for k, v in pairs if v is not None})
        out["lines"] = self.lines
        out["decisions"] = self.decisions
        ack, tx = self.ack.to_json(), self.tx.to_json()
        if ack:
            out["ack"] = ack
        if tx:
            out["tx"] = tx
        return out

    # --- what the readers ask ---------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self.state == "Closed"

    def ack_failed(self) -> bool:
        """The transaction of the last submitted acknowledgement failed at Amazon."""
        return bool(self.ack.txid) and self.tx.id == self.ack.txid and self.tx.status == "Failure"

    def submitted_for_current(self) -> bool:
        """Our acknowledgement of the current revision was submitted (not necessarily taken)."""
        return bool(self.rev) and self.ack.rev == self.rev and bool(self.ack.txid)

    def is_acknowledged(self) -> bool:
        """Amazon has, or will have, an acknowledgement of the current revision (module doc)."""
        if self.state == "Acknowledged":
            return True
        return self.submitted_for_current() and not self.ack_failed()

    def built_for_current(self) -> bool:
        return bool(self.rev) and self.ack.rev == self.rev and bool(self.ack.hash)

    def held(self) -> dict[str, dict[str, Any]]:
        """Line -> its decision, for lines whose latest decision is a hold."""
        return {s: d for s, d in self.decisions.items() if d.get("hold") and s in self.lines}

    def undecided(self) -> list[str]:
        return [seq for seq in self.lines if seq not in self.decisions]

    def ready_to_acknowledge(self) -> bool:
        """Every line decided, none on hold, no acknowledgement built for this revision."""
        if not self.lines or self.undecided() or self.held():
            return False
        return self.ack.rev != self.rev

    def selling_party(self, default: str) -> str:
        """The vendor code Amazon ordered from (a vendor group has several): the PO's own
        ``sellingParty``; ``default`` only for a PO that names none."""
        details = (self.order or {}).get("orderDetails") or {}
        party = (details.get("sellingParty") or {}).get("partyId")
        return party if isinstance(party, str) and party else default

    # --- the revision rule ------------------------------------------------------------
    def revision_change(self, revision: str, state: str) -> RevisionChange:
        """What one received revision of the PO is to this record: the same again, older
        than what we hold, only Amazon's state moved (nothing to re-decide; a Closed PO is
        always taken in: its close is planned), or a new revision to decide."""
        if self.rev == revision and self.state == state:
            return "duplicate"
        if self.rev is not None and revision < self.rev:
            return "stale"
        if self.rev == revision and state != "Closed":
            return "state"
        return "new"

    # --- changes (the PO flow) --------------------------------------------------------
    def on_decision(self, d: dict[str, Any]) -> bool:
        """Record one line decision (``LineDecision`` JSON); True when it is new here.
        A decision taken on another revision is dropped: the current one is on its way."""
        if decision_revision(d.get("revision")) != self.rev:
            return False
        seq = d["itemSequenceNumber"]
        if self.decisions.get(seq) == d:
            return False  # redelivered
        self.decisions[seq] = d
        return True

    def on_built(self, digest: str, at: float) -> None:
        self.ack = AckState(rev=self.rev, hash=digest, built_at=at)

    def on_ack_submitted(self, txid: str, at: float, digest: str | None = None) -> bool:
        """Amazon took the request carrying our acknowledgement. False (nothing changes) when
        it carried the bytes of another acknowledgement than the one built last (e.g. of an
        older revision, submitted while the new one was built)."""
        if digest is not None and self.ack.hash is not None and digest != self.ack.hash:
            return False
        self.ack = replace(self.ack, txid=txid, submitted_at=at)
        self.tx = TxState(id=txid, status="Processing", checked_at=at)
        return True

    def on_ack_failed(self, error: str) -> None:
        self.ack = replace(self.ack, error=error)

    def on_tx(self, tx: Mapping[str, Any]) -> None:
        """The outcome of a transaction. Success makes the PO Acknowledged only when it is
        the transaction of the current revision's acknowledgement."""
        merged = {**self.tx.to_json(), **tx}
        self.tx = TxState.from_json(merged)
        if tx.get("status") == "Success" and self.submitted_for_current():
            if self.tx.id == self.ack.txid:
                self.state = "Acknowledged"


def decision_revision(value: object) -> str | None:
    """A decision's revision (pydantic's JSON of a datetime) as the record's ``rev``."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).isoformat()
    except ValueError:
        return None


def load(d: Mapping[str, Any] | PurchaseOrderRecord) -> PurchaseOrderRecord:
    return d if isinstance(d, PurchaseOrderRecord) else PurchaseOrderRecord.from_json(d)


def is_acknowledged(po: Mapping[str, Any] | PurchaseOrderRecord) -> bool:
    """See :meth:`PurchaseOrderRecord.is_acknowledged`."""
    return load(po).is_acknowledged()

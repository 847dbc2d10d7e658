"""The invoice flow's per-PO record (table ``invoices``) and the decisions taken on it.

Pure: no Faust, no I/O. The invoice agent loads a PO's :class:`InvoiceBook`, calls one
``on_*`` method per event and carries out the returned :class:`InvoiceEffects`, as the ASN
flow does with its ShipmentBook. Record shape::

    {"po": PO, "seq": last invoice sequence number used,
     "shipments": {sid: {"digest": accepted version, "shipped": {line: eaches},
                         "status": accepted|invoiced|invalid|failed, "invoice": number}},
     "invoices": {number: {"status": queued|submitted|accepted|failed|rejected,
                           "sids": [...], "lines": {line: eaches}, "amounts": {line: net},
                           "total": "12.34", "currency": "USD", "digest": ..., "txid": ...,
                           "invoice": the body while queued}},
     "exceptions": {kind|ref: open OpsException}}

A number, once given, is never given again (``seq`` only grows), and a shipment is billed
by at most one *live* invoice (queued, submitted or accepted): that is the "no second
invoice" rule, and what makes a redelivered event harmless.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from streams.domain.invoice import (
    InvoiceBuildError,
    InvoiceRules,
    PoTerms,
    build_invoice,
    decimal_of,
    invoice_eaches,
    line_amounts,
)
from streams.domain.invoice_check import (
    InvoiceContext,
    InvoiceViolation,
    ModelCheck,
    validate_invoice,
)
from streams.domain.invoice_effects import (
    INVALID,
    LIVE,
    TX_FAILED,
    InvoiceEffects,
    _is_duplicate,
    _iso,
    _no_model,
    invoice_digest,
    invoice_purchase_order,
    raise_in,
    resolve_in,
)

__all__ = [
    "INVALID", "LIVE", "TX_FAILED", "InvoiceBook", "InvoiceEffects", "invoice_digest",
    "invoice_purchase_order",
]  # fmt: skip

class InvoiceBook:
    """One PO's invoices, as stored in ``invoices[PO]``."""

    def __init__(self, po: str, data: Mapping[str, Any] | None = None) -> None:
        self.po = po
        self.data: dict[str, Any] = dict(data or {"po": po})
        self.data.setdefault("seq", 0)
        self.shipments: dict[str, dict[str, Any]] = self.data.setdefault("shipments", {})
        self.invoices: dict[str, dict[str, Any]] = self.data.setdefault("invoices", {})
        self.exceptions: dict[str, dict[str, Any]] = self.data.setdefault("exceptions", {})

    def to_json(self) -> dict[str, Any]:
        return self.data

    # --- reads

    def live(self) -> dict[str, dict[str, Any]]:
        return {n: inv for n, inv in self.invoices.items() if inv["status"] in LIVE}

    def invoiced_eaches(self, exclude: str | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for number, inv in self.live().items():
            if number != exclude:
                for key, n in inv["lines"].items():
                    out[key] = out.get(key, 0) + int(n)
        return out

    def invoiced_amounts(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for inv in self.live().values():
            for key, amount in (inv.get("amounts") or {}).items():
                out[key] = out.get(key, Decimal(0)) + (decimal_of(amount) or Decimal(0))
        return out

    def queued(self) -> list[tuple[str, dict[str, Any]]]:
        return [
            (n, inv["invoice"])
            for n, inv in self.invoices.items()
            if inv["status"] == "queued" and "invoice" in inv
        ]

    def in_flight(self) -> list[tuple[str, str, float]]:
        return [
            (inv["txid"], n, inv.get("submittedAt", 0.0))
            for n, inv in self.invoices.items()
            if inv["status"] == "submitted" and inv.get("txid")
        ]

    def waiting(self) -> list[str]:
        """Accepted shipments not invoiced yet (per-po mode: the PO is not fully shipped)."""
        return [sid for sid, sh in self.shipments.items() if sh["status"] == "accepted"]

    def to_retry(self) -> list[str]:
        """Shipments judged invalid, or whose invoice Amazon refused: judged again at start."""
        return [sid for sid, sh in self.shipments.items() if sh["status"] in ("invalid", "failed")]

    # --- events

    def on_shipment(
        self,
        sid: str,
        version_digest: str,
        shipped: Mapping[str, int],
        terms: PoTerms | str,
        rules: InvoiceRules,
        model_check: ModelCheck,
        now: datetime,
    ) -> InvoiceEffects:
        """Amazon accepted shipment ``sid``'s confirmation (``version_digest``)."""
        eff = InvoiceEffects()
        now_iso = _iso(now)
        sh = self.shipments.get(sid)
        if sh is not None and sh["digest"] == version_digest:
            eff.outcomes.append("duplicate")  # a redelivered event: billed once already
            return eff
        if sh is not None and sh["status"] == "invoiced":
            # a Replace accepted after the shipment was invoiced: a correction is finance's
            eff.changed = True
            sh["replacedBy"] = version_digest
            raise_in(self.exceptions, self.po,
                INVALID,
                sid,
                (
                    f"shipment {sid} of PO {self.po} was replaced at Amazon after invoice "
                    f"{sh['invoice']} billed it; nothing new is invoiced. If the quantities "
                    "changed, issue a credit note (docs/invoices.md, credit notes)"
                ),
                now_iso,
                eff,
            )
            eff.outcomes.append("invalid")
            return eff
        self.shipments[sid] = {
            "digest": version_digest,
            "shipped": dict(shipped),
            "status": "accepted",
            "invoice": None,
        }
        eff.changed = True
        self._invoice_ready(terms, rules, model_check, now, eff)
        return eff

    def on_recheck(
        self, terms: PoTerms | str, rules: InvoiceRules, model_check: ModelCheck, now: datetime
    ) -> InvoiceEffects:
        """Judge again what could not be invoiced (after finance fixed the cause)."""
        eff = InvoiceEffects()
        retry = self.to_retry()
        for sid in retry:
            self.shipments[sid]["status"] = "accepted"
        if retry or self.waiting():
            eff.changed = bool(retry)
            self._invoice_ready(terms, rules, model_check, now, eff)
        return eff

    def on_submitted(
        self, number: str, digest: str, txid: str, at: float, resent: bool = False
    ) -> InvoiceEffects:
        eff = InvoiceEffects()
        inv = self.invoices.get(number)
        if inv is None or inv["digest"] != digest or inv["status"] != "queued":
            return eff  # reported again, or unknown
        inv.update({"status": "submitted", "txid": txid, "submittedAt": at})
        if resent:
            inv["resent"] = True
        inv.pop("invoice", None)  # the topic keeps the body; the record keeps what rules need
        eff.changed = True
        eff.outcomes.append("submitted")
        eff.watch.append((txid, number, at))
        return eff

    def on_rejected(self, number: str, digest: str, error: str, now: datetime) -> InvoiceEffects:
        eff = InvoiceEffects()
        inv = self.invoices.get(number)
        if inv is None or inv["digest"] != digest or inv["status"] not in ("queued", "submitted"):
            return eff
        inv.update({"status": "rejected", "error": error})
        inv.pop("invoice", None)
        self._ended(number, eff)
        eff.outcomes.append("rejected")
        raise_in(self.exceptions, self.po,
            TX_FAILED,
            number,
            f"invoice {number} of PO {self.po} was rejected by Amazon: {error}",
            _iso(now),
            eff,
        )
        return eff

    def on_transaction(
        self, number: str, txid: str, status: str, errors: list[dict[str, Any]], now: datetime
    ) -> InvoiceEffects:
        eff = InvoiceEffects()
        inv = self.invoices.get(number)
        eff.done.append(txid)
        if inv is None or inv.get("txid") != txid or inv["status"] != "submitted":
            return eff
        if status == "Processing":
            return eff
        eff.changed = True
        text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or "Failure"
        if status == "Failure" and inv.get("resent") and _is_duplicate(text):
            # sent twice after a crash: Amazon kept the first one and refused this one
            inv.update({"status": "accepted", "note": f"duplicate refused by Amazon: {text}"})
            eff.outcomes.append("accepted")
            return eff
        if status == "Failure":
            inv.update({"status": "failed", "errors": errors})
            self._ended(number, eff)
            eff.outcomes.append("failed")
            raise_in(self.exceptions, self.po,
                TX_FAILED,
                number,
                (
                    f"Amazon could not process invoice {number} of PO {self.po} "
                    f"(transaction {txid}): {text}"
                ),
                _iso(now),
                eff,
            )
            return eff
        inv["status"] = "accepted"
        eff.outcomes.append("accepted")
        # this invoice bills what an earlier, failed one could not: their exceptions end
        for other, x in self.invoices.items():
            if other == number or set(x["sids"]) & set(inv["sids"]):
                resolve_in(self.exceptions, TX_FAILED, other, _iso(now), eff)
        return eff

    # --- internals

    def _invoice_ready(
        self,
        terms: PoTerms | str,
        rules: InvoiceRules,
        model_check: ModelCheck,
        now: datetime,
        eff: InvoiceEffects,
    ) -> None:
        ready = [sid for sid, sh in self.shipments.items() if sh["status"] == "accepted"]
        if not ready:
            return
        if isinstance(terms, str):
            for sid in ready:
                self._invalid([sid], [InvoiceViolation("PO_UNAVAILABLE", "(po)", terms)], now, eff)
            return
        if rules.mode == "per-po":
            if not self._fully_shipped(terms):
                eff.outcomes.append("waiting")
                return
            self._invoice(ready, terms, rules, model_check, now, eff)
            return
        for sid in ready:
            self._invoice([sid], terms, rules, model_check, now, eff)

    def _fully_shipped(self, terms: PoTerms) -> bool:
        """Every accepted eaches shipped (by accepted confirmations), or the PO is Closed."""
        if terms.closed:
            return True
        shipped: dict[str, int] = {}
        for sh in self.shipments.values():
            for key, n in sh["shipped"].items():
                shipped[key] = shipped.get(key, 0) + int(n)
        return all(shipped.get(k, 0) >= ln.acknowledged for k, ln in terms.lines.items())

    def _invoice(
        self,
        sids: list[str],
        terms: PoTerms,
        rules: InvoiceRules,
        model_check: ModelCheck,
        now: datetime,
        eff: InvoiceEffects,
    ) -> None:
        shipped: dict[str, int] = {}
        for sid in sids:
            for key, n in self.shipments[sid]["shipped"].items():
                shipped[key] = shipped.get(key, 0) + int(n)
        number = rules.number(self.po, int(self.data["seq"]) + 1)
        try:
            body = build_invoice(number, terms, shipped, rules, now)
        except InvoiceBuildError as exc:
            self._invalid(sids, [InvoiceViolation(*p) for p in exc.problems], now, eff)
            return
        live = self.live()
        ctx = InvoiceContext(
            terms=terms,
            rules=rules,
            model_check=model_check if rules.render is None else _no_model,
            shipped=shipped,
            invoiced_before=self.invoiced_eaches(),
            used_numbers=set(self.invoices),
            shipments=sids,
            invoiced_shipments={s for inv in live.values() for s in inv["sids"]},
        )
        violations = validate_invoice(body, ctx)
        out = body if rules.render is None or violations else rules.render(body)
        if out is not body:  # the rules judged the builder's body; Amazon's model, what goes
            for problem in model_check(out):
                where, _, message = problem.partition(": ")
                violations.append(InvoiceViolation("AMAZON_MODEL", where, message))
        if violations:
            self._invalid(sids, violations, now, eff)
            return
        self.data["seq"] = int(self.data["seq"]) + 1
        lines = invoice_eaches(body, terms)
        currency = body["invoiceTotal"]["currencyCode"]
        amounts = {}
        for item in body["items"]:
            key = str(item["itemSequenceNumber"])
            price = decimal_of(item["netCost"]["amount"]) or Decimal(0)
            net, _ = line_amounts(lines.get(key, 0), price, currency, rules)
            amounts[key] = format(net, "f")
        self.invoices[number] = {
            "status": "queued",
            "sids": list(sids),
            "lines": lines,
            "amounts": amounts,
            "total": body["invoiceTotal"]["amount"],
            "currency": body["invoiceTotal"]["currencyCode"],
            "date": body["date"],
            "digest": invoice_digest(out),
            "invoice": out,
        }
        for sid in sids:
            self.shipments[sid].update({"status": "invoiced", "invoice": number})
            self.shipments[sid].pop("violations", None)
            resolve_in(self.exceptions, INVALID, sid, _iso(now), eff)
        resolve_in(self.exceptions, INVALID, "po", _iso(now), eff)
        eff.changed = True
        eff.publish.append((number, out))
        eff.outcomes.append("built")

    def _invalid(
        self,
        sids: list[str],
        violations: list[InvoiceViolation],
        now: datetime,
        eff: InvoiceEffects,
    ) -> None:
        listed = "; ".join(f"[{x.code}] {x.field}: {x.message}" for x in violations)
        for sid in sids:
            self.shipments[sid].update(
                {"status": "invalid", "violations": [x.to_json() for x in violations]}
            )
        what = f"shipment {sids[0]}" if len(sids) == 1 else f"shipments {', '.join(sids)}"
        cause = (
            f"invoice for {what} of PO {self.po} not sent: {len(violations)} violation(s): {listed}"
        )
        raise_in(self.exceptions, self.po,
            INVALID,
            sids[0] if len(sids) == 1 else "po",
            cause,
            _iso(now),
            eff,
            violations=violations,
        )
        eff.outcomes.append("invalid")

    def _ended(self, number: str, eff: InvoiceEffects) -> None:
        """An invoice Amazon will not hold: its shipments are free to be invoiced again."""
        eff.changed = True
        inv = self.invoices[number]
        if inv.get("txid"):
            eff.done.append(inv["txid"])
        for sid in inv["sids"]:
            if sid in self.shipments:
                self.shipments[sid].update({"status": "failed", "invoice": None})

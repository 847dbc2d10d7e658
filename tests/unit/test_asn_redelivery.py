"""ShipmentBook under a redelivered dispatch (pure): a worker killed after saving the book
and before sending what it made of the dispatch (docs/reliability.md, "a crash between
saving a record and sending its outputs")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson

from streams.adapters.codecs import loads
from streams.domain.asn_effects import INVALID, Rules
from streams.domain.asn_model import UsedShipment
from streams.domain.asn_state import ShipmentBook
from streams.domain.dispatch import Dispatch
from tests.unit.test_asn_validate import NOW, PO, dispatch_doc


class NoClaims:
    """The global index of used ids, empty (a UsedIndex)."""

    def shipment(self, sid: str) -> UsedShipment | None:
        return None

    def bill_of_lading(self, bol: str) -> str | None:
        return None

    def sscc(self, sscc: str) -> str | None:
        return None


RULES = Rules(now=NOW, model_check=lambda asn: [], future_tolerance=timedelta(days=1))


def dispatched(book: ShipmentBook, doc: dict[str, Any], po: Any) -> Any:
    return book.on_dispatch(doc, Dispatch.model_validate(doc), po, {}, NoClaims(), RULES, 1.0)


def saved(book: ShipmentBook) -> ShipmentBook:
    return ShipmentBook(book.po, loads(orjson.dumps(book.to_json())))


def test_a_redelivered_waiting_dispatch_reports_its_exception_again() -> None:
    """Not acknowledged yet: the dispatch waits, with an owned exception. Killed before the
    exception was sent, the redelivery reports the stored one again and changes nothing."""
    book = ShipmentBook("PO100001", None)
    first = dispatched(book, dispatch_doc(), "PO PO100001 is not acknowledged")
    assert first.outcomes == ["pending"] and [e["kind"] for e in first.exceptions] == [INVALID]
    again = dispatched(saved(book), dispatch_doc(), "PO PO100001 is not acknowledged")
    assert again.outcomes == ["duplicate"] and not again.changed and not again.publish
    assert again.exceptions == first.exceptions  # the same record: id, cause, first seen


def test_a_redelivered_built_dispatch_claims_its_ids_again_and_sends_nothing_new() -> None:
    """Built: the ASN is queued (republished by the start-up scan, the sender drops what it
    sent) and its ids claimed. The redelivery publishes nothing and claims the same ids."""
    book = ShipmentBook("PO100001", None)
    first = dispatched(book, dispatch_doc(), PO)
    assert first.outcomes == ["built"], first.exceptions
    [(sid, asn, n)] = first.publish
    again_book = saved(book)
    assert again_book.queued() == [(sid, asn, n)]  # what the scan republishes, as built
    again = dispatched(again_book, dispatch_doc(), PO)
    assert again.outcomes == ["duplicate"] and not again.changed and not again.publish
    assert again.register == first.register and again.exceptions == []


def test_a_redelivered_failed_transaction_reports_its_exception_again() -> None:
    """Amazon could not process the ASN: the book records it and raises an owned exception.
    Killed before it was sent, the redelivered outcome reports it again (with the txid)."""
    book = ShipmentBook("PO100001", None)
    [(sid, _, n)] = dispatched(book, dispatch_doc(), PO).publish
    digest = book.shipments[sid]["versions"][n]["digest"]
    book.on_submitted(sid, digest, n, "tx-9", 2.0)
    errors = [{"code": "E1", "message": "bad"}]
    first = book.on_transaction(sid, "tx-9", "Failure", errors, "2024-03-13T12:00:00Z")
    [exc] = first.exceptions
    assert exc["kind"] == "asn-transaction-failed" and exc["transactionId"] == "tx-9"
    again = saved(book).on_transaction(sid, "tx-9", "Failure", errors, "2024-03-13T12:05:00Z")
    assert not again.changed and again.exceptions == [exc]
    processing = saved(book).on_transaction(sid, "tx-9", "Processing", [], "x")
    assert processing.exceptions == []  # only a final outcome is a redelivery of one

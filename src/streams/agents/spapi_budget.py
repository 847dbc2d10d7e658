"""The retail senders' share of Amazon's usage plans, from the Faust app's assignment.

Acknowledgements go out from the owners of ``amazon.po-acknowledgements``' partitions, ASNs
from the owners of ``amazon.shipment-confirmations``', and both check their transactions
with the retail ``getTransaction``. So each worker keeps to its share of those partitions
(:mod:`streams.domain.rate_budget`): ``submitAcknowledgement`` by the first topic,
``SubmitShipmentConfirmations`` by the second, ``getTransaction`` by both together. The
share drops to nothing as a rebalance starts and follows the new assignment once it is
known. ``getPurchaseOrders`` is the leader's alone (the poller runs on the leader only) and
keeps the whole plan; the inventory sender sets its own share (agents/inventory_sender.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import faust

from streams.config import Settings
from streams.domain.rate_budget import Share
from streams.observability import metrics as M

log = logging.getLogger(__name__)

ACK, ASN, TX = "submitAcknowledgement", "SubmitShipmentConfirmations", "getTransaction"
INV = "submitInvoices"  # by the owners of amazon.invoices' partitions (docs/invoices.md)


def retail_shares(s: Settings, assigned: Iterable[Any]) -> dict[str, Share]:
    """Operation -> this worker's share, from its assigned topic partitions."""
    tps = list(assigned)
    acks = sum(tp.topic == s.topic_po_acknowledgements for tp in tps)
    asns = sum(tp.topic == s.topic_shipment_confirmations for tp in tps)
    invs = sum(tp.topic == s.topic_invoices for tp in tps)
    n = s.partitions  # these topics have STREAMS_PARTITIONS (streams.topics)
    shares = {ACK: Share(acks, n), ASN: Share(asns, n), TX: Share(acks + asns, 2 * n)}
    if s.invoices_enabled:  # invoice transactions are few: they share getTransaction's plan
        shares[INV] = Share(invs, n)
    return shares


class RetailBudget:
    """Sets the shared SP-API client's shares on every rebalance of the Faust app."""

    def __init__(self, app: faust.App, settings: Settings, spapi: Callable[[], Any]) -> None:
        self.settings = settings
        self.spapi = spapi
        app.on_partitions_revoked.connect(self._revoked)
        app.on_partitions_assigned.connect(self._assigned)

    def apply(self, shares: dict[str, Share]) -> None:
        client = self.spapi()
        set_share = getattr(client, "set_share", None)
        if set_share is None:  # a test's fake client may have no budget
            return
        for op, share in shares.items():
            set_share([op], share)
            M.SPAPI_BUDGET.labels(op).set(client.rate_limit(op)[0])

    # Faust's signals call receivers with (sender, *args, signal=..., **kwargs)
    async def _revoked(self, *args: Any, **kwargs: Any) -> None:
        self.apply(retail_shares(self.settings, ()))

    async def _assigned(self, *args: Any, **kwargs: Any) -> None:
        self.apply(retail_shares(self.settings, args[1] if len(args) > 1 else ()))

"""Check a ``ShipmentConfirmation`` before it is sent: every reason Amazon would reject it or
charge back for it.

The ASN is read once into a typed view (:mod:`streams.domain.asn_view`); the rules
(:mod:`streams.domain.asn_check_shipment`, :mod:`streams.domain.asn_check_goods`) judge that
view against the PO as acknowledged and the ids other shipments used (:class:`AsnContext`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.domain import asn_check_goods, asn_check_shipment
from streams.domain.asn_check_shipment import looks_like_date
from streams.domain.asn_findings import AsnContext, Code, Findings, Violation
from streams.domain.asn_view import read_asn

__all__ = ["AsnContext", "Code", "Violation", "looks_like_date", "validate_shipment_confirmation"]


def validate_shipment_confirmation(asn: Mapping[str, Any], context: AsnContext) -> list[Violation]:
    """Every reason Amazon would reject ``asn`` or charge back for it; empty = send it.

    Runs on any JSON value: the view reads the ASN defensively, so a malformed ASN yields its
    model errors and whatever else can still be said, never an exception.
    """
    f = Findings(read_asn(asn), context)
    asn_check_shipment.model(f, asn)
    asn_check_shipment.identity(f)
    asn_check_shipment.dates(f)
    asn_check_shipment.transport(f)
    asn_check_goods.items(f)
    asn_check_goods.containers(f)
    return f.out

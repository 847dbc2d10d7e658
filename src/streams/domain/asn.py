"""Dispatch -> ASN, the rules: one name for the ASN modules of the domain.

- :mod:`streams.domain.asn_model`: the PO as acknowledged (``PoState``), used shipment ids;
- :mod:`streams.domain.asn_build`: the ``ShipmentConfirmation`` for a dispatch;
- :mod:`streams.domain.asn_check`: every reason Amazon would reject it.
"""

from __future__ import annotations

from streams.domain.asn_build import build_shipment_confirmation, submit_request
from streams.domain.asn_check import (
    AsnContext,
    Code,
    Violation,
    looks_like_date,
    validate_shipment_confirmation,
)
from streams.domain.asn_model import (
    SHIPMENT_ID_REUSE_WINDOW,
    AckLine,
    ModelCheck,
    Party,
    PoState,
    UnitOfMeasure,
    UsedShipment,
    asn_seq,
    iso,
    seq_key,
)

__all__ = [
    "SHIPMENT_ID_REUSE_WINDOW",
    "AckLine",
    "AsnContext",
    "Code",
    "ModelCheck",
    "Party",
    "PoState",
    "UnitOfMeasure",
    "UsedShipment",
    "Violation",
    "asn_seq",
    "build_shipment_confirmation",
    "iso",
    "looks_like_date",
    "seq_key",
    "submit_request",
    "validate_shipment_confirmation",
]

"""Seeded, deterministic Amazon Retail Procurement purchase orders (vendorOrders.json ``Order``).

Given the same seed, catalogue and ``now`` the output is identical, so tests and the demo can
replay a scenario. The numbers are plausible rather than real: FC codes and addresses are
illustrative, prices derive from the SKU so one SKU keeps one cost across orders.
"""

from __future__ import annotations

import random
import string
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

__all__ = [
    "CatalogueItem",
    "OrderGenerator",
    "acknowledgement_for",
    "default_catalogue",
    "ean13",
    "generate_orders",
    "isoformat",
]

PO_ALPHABET = string.ascii_uppercase + string.digits
CASE_SIZES = (6, 12, 24)

# (FC code, city, state/region, postal code, country) - illustrative fulfilment centres
FULFILMENT_CENTRES: dict[str, tuple[tuple[str, str, str, str, str], ...]] = {
    "na": (
        ("ABE8", "Florence", "NJ", "08518", "US"),
        ("PHL4", "Carlisle", "PA", "17015", "US"),
        ("MDW2", "Joliet", "IL", "60436", "US"),
        ("ONT8", "Moreno Valley", "CA", "92551", "US"),
        ("BFI4", "Kent", "WA", "98032", "US"),
        ("DFW7", "Fort Worth", "TX", "76177", "US"),
        ("YYZ4", "Brampton", "ON", "L6Y 5N5", "CA"),
    ),
    "eu": (
        ("DUS2", "Rheinberg", "NW", "47495", "DE"),
        ("LEJ1", "Leipzig", "SN", "04347", "DE"),
        ("BHX4", "Coventry", "WMD", "CV6 4QP", "GB"),
        ("MXP5", "Castel San Giovanni", "PC", "29015", "IT"),
        ("MAD4", "San Fernando de Henares", "M", "28830", "ES"),
        ("ORY1", "Saran", "CVL", "45770", "FR"),
    ),
    "fe": (
        ("NRT1", "Ichikawa", "Chiba", "272-0193", "JP"),
        ("KIX2", "Sakai", "Osaka", "590-8511", "JP"),
        ("SYD8", "Moorebank", "NSW", "2170", "AU"),
    ),
}
CURRENCY = {"na": "USD", "eu": "EUR", "fe": "JPY"}


class CatalogueItem(NamedTuple):
    """One product Amazon can order; plain 4-tuples are accepted wherever this is."""

    sku: str
    asin: str
    vendorProductIdentifier: str
    unitsPerCase: int


def ean13(body12: str) -> str:
    """Append the GS1 mod-10 check digit to a 12-digit body."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


def default_catalogue(size: int = 40, seed: int = 0) -> list[CatalogueItem]:
    """``size`` products ``SKU-00001``... with ASINs, EAN-13s and case sizes (deterministic)."""
    rng = random.Random(f"catalogue-{seed}")
    out: list[CatalogueItem] = []
    for i in range(1, size + 1):
        asin = "B0" + "".join(rng.choice(PO_ALPHABET) for _ in range(8))
        ean = ean13("40" + f"{rng.randrange(10**10):010d}")
        out.append(CatalogueItem(f"SKU-{i:05d}", asin, ean, rng.choice((1, *CASE_SIZES))))
    return out


def isoformat(ts: datetime) -> str:
    """Amazon's UTC form, ``2019-08-20T15:51:00Z``."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    # Amazon's Decimal is a string; never a float.
    places = Decimal("1") if currency == "JPY" else Decimal("0.01")
    return {"currencyCode": currency, "amount": str(amount.quantize(places, ROUND_HALF_UP))}


def unit_cost(sku: str, currency: str = "USD") -> Decimal:
    """A stable per-each net cost for ``sku`` (so repeated orders agree with each other)."""
    cents = 199 + zlib.crc32(sku.encode()) % 19800
    cost = Decimal(cents) / 100
    return cost * 100 if currency == "JPY" else cost


class OrderGenerator:
    """Produces ``Order`` dicts; every call to :meth:`order` yields the next one in sequence.

    ``now`` anchors all dates (purchase orders fall in the ``spread`` before it); pass a fixed
    value for byte-identical output across runs.
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        catalogue: Sequence[CatalogueItem | tuple[str, str, str, int]] | None = None,
        selling_party: str = "VENDOR1",
        now: datetime | None = None,
        region: str = "na",
        currency: str | None = None,
        spread: timedelta = timedelta(days=3),
        max_lines: int = 6,
        cancel_rate: float = 0.03,
        taken: Iterable[str] = (),
    ) -> None:
        self._rng = random.Random(seed)
        # one catalogue whatever the seed, so the demo's master data can map it
        items = catalogue if catalogue is not None else default_catalogue()
        self.catalogue = [CatalogueItem(*c) for c in items]
        if not self.catalogue:
            raise ValueError("catalogue is empty")
        self.selling_party = selling_party
        self.now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        self.region = region if region in FULFILMENT_CENTRES else "na"
        self.currency = currency or CURRENCY[self.region]
        self.spread = spread
        self.max_lines = max(1, max_lines)
        self.cancel_rate = cancel_rate
        self._taken = set(taken)

    def _po_number(self) -> str:
        while True:
            number = "".join(self._rng.choice(PO_ALPHABET) for _ in range(8))
            if number not in self._taken and not number.isdigit() and not number.isalpha():
                self._taken.add(number)
                return number

    def _line(self, seq: int, item: CatalogueItem, cancelled: bool) -> dict[str, Any]:
        rng = self._rng
        if item.unitsPerCase > 1 and rng.random() < 0.6:
            qty = {
                "amount": rng.randint(1, 40),
                "unitOfMeasure": "Cases",
                "unitSize": item.unitsPerCase,
            }
        else:
            qty = {"amount": rng.randint(1, 200), "unitOfMeasure": "Eaches", "unitSize": 1}
        if cancelled:
            qty["amount"] = 0  # Amazon reports a cancelled line with quantity zero
        cost = unit_cost(item.sku, self.currency)
        markup = Decimal(rng.randint(125, 165)) / 100
        return {
            "itemSequenceNumber": str(seq),
            "amazonProductIdentifier": item.asin,
            "vendorProductIdentifier": item.vendorProductIdentifier,
            "orderedQuantity": qty,
            "isBackOrderAllowed": rng.random() < 0.4,
            "netCost": _money(cost, self.currency),
            "listPrice": _money(cost * markup, self.currency),
        }

    def order(self) -> dict[str, Any]:
        rng = self._rng
        created = self.now - timedelta(seconds=rng.randrange(int(self.spread.total_seconds()) or 1))
        roll = rng.random()
        state = "New" if roll < 0.7 else "Acknowledged" if roll < 0.9 else "Closed"
        state_changed = created if state == "New" else _between(rng, created, self.now)
        fc, city, region, postcode, country = rng.choice(FULFILMENT_CENTRES[self.region])
        ship_start = (created + timedelta(days=rng.randint(1, 3))).replace(
            hour=7, minute=0, second=0
        )
        ship_end = ship_start + timedelta(days=rng.randint(5, 7))

        n_lines = min(len(self.catalogue), rng.randint(1, self.max_lines))
        products = rng.sample(self.catalogue, n_lines)
        cancel_at = (
            rng.randrange(n_lines) if n_lines > 1 and rng.random() < self.cancel_rate else -1
        )
        items = [self._line(i + 1, p, i == cancel_at) for i, p in enumerate(products)]

        details: dict[str, Any] = {
            "purchaseOrderDate": isoformat(created),
            "purchaseOrderStateChangedDate": isoformat(state_changed),
            "purchaseOrderType": rng.choices(
                ("RegularOrder", "RushOrder", "NewProductIntroduction"), (90, 6, 4)
            )[0],
            "paymentMethod": "Invoice",
            "buyingParty": {"partyId": fc},
            "sellingParty": {"partyId": self.selling_party},
            "shipToParty": {
                "partyId": fc,
                "address": {
                    "name": f"Amazon {fc}",
                    "addressLine1": f"{rng.randint(100, 9999)} Fulfillment Way",
                    "city": city,
                    "stateOrRegion": region,
                    "postalCode": postcode,
                    "countryCode": country,
                },
            },
            "billToParty": {"partyId": f"AMZN-{self.region.upper()}"},
            "shipWindow": f"{isoformat(ship_start)}--{isoformat(ship_end)}",
            "items": items,
        }
        if cancel_at >= 0 or rng.random() < 0.12:
            details["purchaseOrderChangedDate"] = isoformat(_between(rng, created, self.now))
        if rng.random() < 0.1:
            details["dealCode"] = f"DEAL{rng.randint(1000, 9999)}"
        return {
            "purchaseOrderNumber": self._po_number(),
            "purchaseOrderState": state,
            "orderDetails": details,
        }

    def orders(self, count: int) -> list[dict[str, Any]]:
        return [self.order() for _ in range(count)]


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    span = max(0, int((end - start).total_seconds()))
    return start + timedelta(seconds=rng.randint(0, span))


def generate_orders(
    count: int,
    *,
    seed: int = 1,
    catalogue: Sequence[CatalogueItem | tuple[str, str, str, int]] | None = None,
    selling_party: str = "VENDOR1",
    now: datetime | None = None,
    region: str = "na",
) -> list[dict[str, Any]]:
    """``count`` orders from a fresh :class:`OrderGenerator` (same arguments, same orders)."""
    gen = OrderGenerator(
        seed=seed, catalogue=catalogue, selling_party=selling_party, now=now, region=region
    )
    return gen.orders(count)


def acknowledgement_for(
    order: dict[str, Any],
    *,
    selling_party: str | None = None,
    code: str = "Accepted",
    when: datetime | None = None,
) -> dict[str, Any]:
    """A complete ``OrderAcknowledgement`` of every line of ``order`` with one code.

    ``Rejected`` lines carry ``rejectionReason``; ``Backordered`` ones a scheduled ship date,
    as the model's descriptions ask. Cancelled (zero-quantity) lines are skipped.
    """
    details = order["orderDetails"]
    when = when or datetime.now(UTC)
    items = []
    for line in details["items"]:
        qty = dict(line["orderedQuantity"])
        if not qty.get("amount"):
            continue
        ack: dict[str, Any] = {"acknowledgementCode": code, "acknowledgedQuantity": qty}
        if code == "Rejected":
            ack["rejectionReason"] = "TemporarilyUnavailable"
        elif code == "Backordered":
            ack["scheduledShipDate"] = isoformat(when + timedelta(days=14))
        item: dict[str, Any] = {
            "itemSequenceNumber": line["itemSequenceNumber"],
            "orderedQuantity": qty,
            "itemAcknowledgements": [ack],
        }
        # copy only what the PO line carries: the model has no nulls
        for key in ("amazonProductIdentifier", "vendorProductIdentifier", "netCost"):
            if key in line:
                item[key] = line[key]
        items.append(item)
    return {
        "purchaseOrderNumber": order["purchaseOrderNumber"],
        "sellingParty": {"partyId": selling_party or details["sellingParty"]["partyId"]},
        "acknowledgementDate": isoformat(when),
        "items": items,
    }

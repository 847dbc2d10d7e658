"""Seeded Direct Fulfillment orders (``vendorDirectFulfillmentOrders`` 2021-12-28 ``Order``).

A DF order is one Amazon customer's order the vendor ships from its own warehouse
(``shipFromParty``): quantities in eaches, a net price per unit, a required ship date, and
the customer's ship-to address. The addresses are made up (names and streets from short
lists, real city/region/postal code triples), but they look like real ones on purpose:
tests plant them and check that none leaves the product in clear.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.sandbox.amazon.generator import (
    CURRENCY,
    PO_ALPHABET,
    CatalogueItem,
    _money,
    default_catalogue,
    isoformat,
    unit_cost,
)

FIRST = ("Maria", "James", "Aisha", "Wei", "Olga", "Diego", "Priya", "Tom", "Fatima", "Jonas")
LAST = ("Garcia", "Smith", "Khan", "Chen", "Ivanova", "Lopez", "Patel", "Brown", "Haddad")
STREETS = ("Maple Ave", "Oak Street", "Elm Road", "Cedar Lane", "Park Blvd", "Hill Drive")
# (city, state/region, postal code, country, phone prefix) per region
CITIES: dict[str, tuple[tuple[str, str, str, str, str], ...]] = {
    "na": (
        ("Seattle", "WA", "98109", "US", "+1 206"),
        ("Austin", "TX", "78701", "US", "+1 512"),
        ("Columbus", "OH", "43215", "US", "+1 614"),
        ("Denver", "CO", "80202", "US", "+1 303"),
    ),
    "eu": (
        ("Berlin", "BE", "10115", "DE", "+49 30"),
        ("Manchester", "Greater Manchester", "M1 1AE", "GB", "+44 161"),
        ("Lyon", "ARA", "69001", "FR", "+33 4"),
    ),
    "fe": (("Tokyo", "Tokyo", "100-0001", "JP", "+81 3"), ("Sydney", "NSW", "2000", "AU", "+61 2")),
}
SHIP_METHODS = ("UPS_GR_RES", "UPS_2ND", "FEDEX_GROUND", "USPS_PRIORITY")
DF_STATUSES = ("NEW", "SHIPPED", "ACCEPTED", "CANCELLED")


class DfOrderGenerator:
    """Produces DF ``Order`` dicts, created in the ``spread`` before ``now``, status NEW."""

    def __init__(
        self,
        *,
        seed: int = 1,
        catalogue: Sequence[CatalogueItem | tuple[str, str, str, int]] | None = None,
        selling_party: str = "VENDOR1",
        warehouses: Sequence[str] = ("WH1",),
        now: datetime | None = None,
        region: str = "na",
        spread: timedelta = timedelta(hours=12),
        max_lines: int = 3,
        taken: Iterable[str] = (),
    ) -> None:
        self._rng = random.Random(f"df-{seed}")
        items = catalogue if catalogue is not None else default_catalogue()
        self.catalogue = [CatalogueItem(*c) for c in items]
        if not self.catalogue or not warehouses:
            raise ValueError("catalogue and warehouses must not be empty")
        self.selling_party = selling_party
        self.warehouses = tuple(warehouses)
        self.now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        self.region = region if region in CITIES else "na"
        self.currency = CURRENCY[self.region]
        self.spread = spread
        self.max_lines = max(1, max_lines)
        self._taken = set(taken)

    def _number(self) -> str:
        while True:
            number = "".join(self._rng.choice(PO_ALPHABET) for _ in range(8))
            if number not in self._taken and not number.isdigit() and not number.isalpha():
                self._taken.add(number)
                return number

    def address(self) -> dict[str, str]:
        rng = self._rng
        city, region, postcode, country, phone = rng.choice(CITIES[self.region])
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        address = {
            "name": name,
            "attention": name,
            "addressLine1": f"{rng.randint(1, 9999)} {rng.choice(STREETS)}",
            "city": city,
            "stateOrRegion": region,
            "postalCode": postcode,
            "countryCode": country,
            "phone": f"{phone} {rng.randint(200, 999)} {rng.randint(1000, 9999)}",
        }
        if rng.random() < 0.3:
            address["addressLine2"] = f"Apt {rng.randint(1, 400)}"
        return address

    def order(
        self, *, created: datetime | None = None, warehouse: str | None = None
    ) -> dict[str, Any]:
        rng = self._rng
        if created is None:
            created = self.now - timedelta(
                seconds=rng.randrange(int(self.spread.total_seconds()) or 1)
            )
        n_lines = min(len(self.catalogue), rng.randint(1, self.max_lines))
        items = []
        for i, product in enumerate(rng.sample(self.catalogue, n_lines), start=1):
            items.append(
                {
                    "itemSequenceNumber": f"{i:05d}",
                    "buyerProductIdentifier": product.asin,
                    "vendorProductIdentifier": product.vendorProductIdentifier,
                    "title": f"Product {product.sku}",
                    "orderedQuantity": {
                        "amount": rng.choice((1, 1, 1, 2, 3)),
                        "unitOfMeasure": "Each",
                    },
                    "netPrice": _money(unit_cost(product.sku, self.currency) * 2, self.currency),
                }
            )
        ship_by = (created + timedelta(days=rng.choice((1, 2)))).replace(
            hour=23, minute=0, second=0
        )
        seven = (rng.randint(10**6, 10**7 - 1) for _ in range(2))
        customer = f"{rng.randint(100, 999)}-" + "-".join(map(str, seven))
        return {
            "purchaseOrderNumber": self._number(),
            "orderDetails": {
                "customerOrderNumber": customer,
                "orderDate": isoformat(created),
                "orderStatus": "NEW",
                "shipmentDetails": {
                    "isPriorityShipment": rng.random() < 0.1,
                    "isScheduledDeliveryShipment": False,
                    "isPslipRequired": rng.random() < 0.5,
                    "isGift": False,
                    "shipMethod": rng.choice(SHIP_METHODS),
                    "shipmentDates": {
                        "requiredShipDate": isoformat(ship_by),
                        "promisedDeliveryDate": isoformat(ship_by + timedelta(days=3)),
                    },
                    "messageToCustomer": "Thank you for shopping at Amazon.",
                },
                "sellingParty": {"partyId": self.selling_party},
                "shipFromParty": {"partyId": warehouse or rng.choice(self.warehouses)},
                "shipToParty": self.address(),
                "billToParty": {"partyId": f"AMZN-{self.region.upper()}"},
                "items": items,
            },
        }

    def orders(self, count: int) -> list[dict[str, Any]]:
        return [self.order() for _ in range(count)]

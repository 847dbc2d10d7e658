"""Bad input for every topic the worker consumes: malformed JSON, wrong types, missing fields,
unknown enum values, negative / zero / huge quantities, unicode, oversize records, replays.

Two ways in, same cases:

* ``generate(topic, seed, n)``: a plain, seeded generator (``random.Random``) for feeding
  tens of thousands of records into a real worker quickly and reproducibly;
* ``bad_cases(topic)``: a Hypothesis strategy over the same mutations, for property tests.

Each :class:`Case` says what the worker must do with it: ``dlq`` (dead-letter it with a
reason), ``ok`` (take it: applied / ignored / duplicate / stale) or ``any`` (either, as long as
it is accounted for: the contract does not pin it down, e.g. unicode in an identifier).
Templates use SKUs / PO numbers of a "bad" name space (``FZ-X-...``), so accepted bad records
never touch what a test checks for its valid records.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from hypothesis import strategies as st

Expect = Literal["dlq", "ok", "any"]
Path = tuple[str | int, ...]
Json = dict[str, Any]

ONE_MB = 1_000_000
OVERSIZE_BYTES = 1_100_000  # above the worker's 1 MB record limit and Kafka's default
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

# text that breaks naive code: RTL, combining marks, astral plane, NUL and control chars,
# zero-width and a lookalike of the key separator
UNICODE = [
    "SKU-\u202e\u05e9\u05dc\u05d5\u05dd",
    "e\u0301\u0301\u0301",
    "\U0001f4a9\U0001f525",
    "nul\u0000byte",
    "ctl\u0001\u001f\u007f",
    "zw\u200b\u200d\ufeff",
    "\u2028line\u2029",
    "\uff1a" * 3,
    "\u0130\u0131\u00df",
]
JUNK_BYTES = [
    b"",
    b"{",
    b"}",
    b"nul",
    b"{'python': 'repr'}",
    b'{"a": 1,}',
    b'{"a" 1}',
    b"\xff\xfe\x00\x01",
    b"\xc3\x28",
    b'{"a": "\xed\xa0\x80"}',  # an encoded lone surrogate: not UTF-8
    b"\x00" * 16,
    b"<html><body>502 Bad Gateway</body></html>",
    b"NaN",
    b'{"a": Infinity}',
    b'"unterminated',
]
NON_OBJECTS: list[Any] = [None, True, 0, -1, 1.5, "text", [], [1, 2], [{}], {"": {}}]


@dataclass(frozen=True)
class Case:
    """One record to produce, what kind of bad it is and what the worker must do with it."""

    key: bytes | None
    value: bytes | None
    kind: str
    expect: Expect

    @property
    def size(self) -> int:
        return len(self.value or b"") + len(self.key or b"")


# --- nested access -----------------------------------------------------------------------
def get_path(d: Any, path: Path) -> Any:
    for p in path:
        d = d[p]
    return d


def set_path(d: Any, path: Path, value: Any) -> None:
    get_path(d, path[:-1])[path[-1]] = value


def del_path(d: Any, path: Path) -> None:
    del get_path(d, path[:-1])[path[-1]]


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # integers beyond 64 bits: valid JSON that orjson cannot write
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# --- what a topic's records look like and how they break ----------------------------------
@dataclass
class Profile:
    """A topic's valid-record template and where it can be broken.

    ``template(rng, n)`` returns (key, value) of a record that the worker takes as it is.
    Each list names paths into that value; the dicts map a path to the expectation when that
    field is altered (default ``dlq``).
    """

    topic: str  # the default topic name (Settings.topic_*)
    template: Callable[[random.Random, int], tuple[bytes | None, Json]]
    required: list[Path]  # dropping it makes the record invalid
    typed: dict[Path, str]  # path -> JSON type it must have ("str", "int", "obj", "list", ...)
    enums: dict[Path, Expect] = field(default_factory=dict)  # unknown value -> expectation
    quantities: list[Path] = field(default_factory=list)
    # expectation per quantity class ("negative", "zero", "huge", "beyond64")
    quantity_expect: dict[str, Expect] = field(default_factory=dict)
    strings: list[Path] = field(default_factory=list)  # where unicode may go
    key_path: Path | None = None  # the value field the key must equal (None: key is free)
    tombstone: Expect = "dlq"
    no_key: Expect = "dlq"
    nan: Expect = "dlq"  # NaN / Infinity in an unknown field (not JSON; some parsers take it)
    oversize: Expect = "any"
    # what a record that parses becomes: "ok", or "dlq" where the template names nothing
    # the worker can act on (a command for an entry that does not exist)
    accepted: Expect = "ok"
    # extra mutations only this topic has: name -> builder(rng, key, value) -> Case
    special: dict[str, Callable[[random.Random, bytes | None, Json], Case]] = field(
        default_factory=dict
    )


def _wrong_value(kind: str, rng: random.Random) -> Any:
    """A JSON value that is certainly not of ``kind`` (even for lax parsers)."""
    options: dict[str, list[Any]] = {
        "str": [123, 1.5, True, {"s": "x"}, ["x"]],
        "int": ["twelve", {"n": 1}, [1], "1.5.0", "0x10"],
        "strict_int": ["12", 12.5, "twelve", {"n": 1}, [1], True],
        "obj": ["object", 7, [1, 2], True],
        "list": ["a list", 7, {"0": "x"}],
        "bool": ["perhaps", 2, {"b": True}, [True]],
        "datetime": ["not-a-date", "2026-13-45T99:99:99Z", {"d": 1}, [2026]],
        "aware_datetime": ["2026-11-27T08:00:00", "not-a-date", {"d": 1}],
    }
    return rng.choice(options[kind])


# --- ct.messages ------------------------------------------------------------------------
def ct_message(
    entry: str,
    sku: str,
    channel: str,
    version: int,
    available: int,
    on_stock: int | None = None,
    msg_id: str | None = None,
) -> Json:
    """An InventoryEntryQuantitySet delivery, Platform format, as commercetools sends it."""
    return {
        "notificationType": "Message",
        "projectKey": "fuzz",
        "id": msg_id or f"{entry}-v{version}",
        "version": 1,
        "sequenceNumber": version,
        "resource": {"typeId": "inventory-entry", "id": entry},
        "resourceVersion": version,
        "resourceUserProvidedIdentifiers": {"sku": sku},
        "type": "InventoryEntryQuantitySet",
        "oldQuantityOnStock": 0,
        "newQuantityOnStock": available if on_stock is None else on_stock,
        "oldAvailableQuantity": 0,
        "newAvailableQuantity": available,
        "sku": sku,
        "supplyChannel": {"typeId": "channel", "id": channel},
        "createdAt": "2026-11-27T08:00:00.000Z",
        "lastModifiedAt": "2026-11-27T08:00:00.000Z",
    }


def _ct_template(rng: random.Random, n: int) -> tuple[bytes | None, Json]:
    sku = f"FZ-X-{rng.randrange(50)}"
    return b"ct", ct_message(f"fz-e-{sku}", sku, "fz-wh", rng.randrange(1, 10_000), 5, msg_id=None)


def _ct_cloudevent(rng: random.Random, key: bytes | None, v: Json) -> Case:
    bad = rng.random() < 0.5
    data: Any = rng.choice(["text", 5, [v]]) if bad else v
    ce = {"specversion": "1.0", "id": f"ce-{rng.random()}", "type": "x", "data": data}
    return Case(
        key, dumps(ce), "cloudevent_bad_data" if bad else "cloudevent", "dlq" if bad else "ok"
    )


def _ct_payload_not_included(rng: random.Random, key: bytes | None, v: Json) -> Case:
    # the worker reads the entry from commercetools; an unknown entry is "gone": ignored
    v = {k: v[k] for k in ("notificationType", "id", "resource", "resourceVersion", "type")}
    v["payloadNotIncluded"] = {"reason": "too large", "payloadType": "InventoryEntryQuantitySet"}
    v["resource"] = {"typeId": "inventory-entry", "id": f"no-such-entry-{rng.randrange(10**9)}"}
    return Case(key, dumps(v), "payload_not_included", "any")


def _ct_unhashable(rng: random.Random, key: bytes | None, v: Json) -> Case:
    v["notificationType"] = rng.choice([["Message"], {"type": "Message"}, []])
    return Case(key, dumps(v), "unhashable_notification_type", "dlq")


def _ct_other_resource(rng: random.Random, key: bytes | None, v: Json) -> Case:
    v["resource"]["typeId"] = rng.choice(["order", "product", "cart", "\U0001f4e6"])
    return Case(key, dumps(v), "other_resource", "ok")


def _ct_order(rng: random.Random, key: bytes | None, v: Json) -> Case:
    """A storefront order for one of the fuzzed SKUs, well formed or with a bad line."""
    sku = v["sku"] if isinstance(v.get("sku"), str) else "FZ-X-0"
    line: Json = {"id": f"li-{rng.randrange(10**9)}", "variant": {"sku": sku}, "quantity": 1,
                  "supplyChannel": {"typeId": "channel", "id": "fz-wh"}}  # fmt: skip
    bad = rng.choice([None, "quantity", "variant", "mode"])
    if bad == "quantity":
        line["quantity"] = rng.choice(["1", None, 1.5, True])
    elif bad == "variant":
        del line["variant"]
    order: Json = {"id": f"fz-o-{rng.randrange(10**9)}", "version": 1, "lineItems": [line],
                   "inventoryMode": "Nope" if bad == "mode" else "ReserveOnOrder"}  # fmt: skip
    msg = {k: v[k] for k in ("notificationType", "id", "version", "createdAt") if k in v}
    msg.update(resource={"typeId": "order", "id": order["id"]}, resourceVersion=1,
               type="OrderCreated", order=order)  # fmt: skip
    return Case(key, dumps(msg), "order", "dlq" if bad else "ok")


CT_MESSAGES = Profile(
    topic="ct.messages",
    template=_ct_template,
    required=[
        ("resource",),
        ("resource", "typeId"),
        ("resource", "id"),
        ("type",),
        ("resourceVersion",),
        ("newAvailableQuantity",),
        ("newQuantityOnStock",),
    ],
    typed={
        ("resource",): "obj",
        ("resource", "id"): "str",
        ("resource", "typeId"): "str",
        ("type",): "str",
        ("resourceVersion",): "strict_int",
        ("newAvailableQuantity",): "strict_int",
        ("newQuantityOnStock",): "strict_int",
        ("sku",): "str",
        ("supplyChannel",): "obj",
    },
    enums={("notificationType",): "dlq", ("type",): "dlq"},
    quantities=[("newAvailableQuantity",), ("newQuantityOnStock",)],
    # commercetools stock may go negative; beyond 10^12 is out of range by contract
    quantity_expect={"negative": "ok", "zero": "ok", "huge": "dlq", "beyond64": "dlq"},
    strings=[("sku",), ("resource", "id"), ("id",), ("supplyChannel", "id")],
    key_path=None,
    tombstone="dlq",
    no_key="ok",
    nan="dlq",
    oversize="dlq",
    special={
        "cloudevent": _ct_cloudevent,
        "payload_not_included": _ct_payload_not_included,
        "other_resource": _ct_other_resource,
        "unhashable_notification_type": _ct_unhashable,
        "order": _ct_order,
    },
)


# --- master.sku-mappings --------------------------------------------------------------------
def sku_mapping(sku: str, asin: str, channels: list[str], **extra: Any) -> Json:
    return {
        "sku": sku,
        "asin": asin,
        "vendorProductIdentifier": f"V-{sku}"[:64],
        "amazonChannels": channels,
        "netCost": {"amount": "10.00", "currencyCode": "USD"},
        **extra,
    }


def _map_template(rng: random.Random, n: int) -> tuple[bytes | None, Json]:
    sku = f"FZ-X-{rng.randrange(50)}"
    m = sku_mapping(sku, f"B0FZ{rng.randrange(10**6):06d}", ["fz-wh"], unitsPerCase=6)
    return sku.encode(), m


MAPPINGS = Profile(
    topic="master.sku-mappings",
    template=_map_template,
    required=[("sku",)],
    typed={
        ("sku",): "str",
        ("asin",): "str",
        ("unitsPerCase",): "strict_int",
        ("amazonChannels",): "list",
        ("netCost",): "obj",
        ("obsolete",): "bool",
    },
    enums={("amazonUnitOfMeasure",): "dlq"},
    quantities=[("unitsPerCase",), ("safetyBuffer",)],
    # unitsPerCase >= 1 <= 100000, safetyBuffer >= 0; a buffer beyond 64 bits is still an int
    quantity_expect={"negative": "dlq", "zero": "any", "huge": "any", "beyond64": "any"},
    strings=[("asin",), ("vendorProductIdentifier",)],
    key_path=("sku",),
    tombstone="ok",  # a tombstone deletes the mapping
    no_key="dlq",
    nan="any",
    oversize="dlq",  # over 900 kB: refused like any other topic's
)


# --- amazon.purchase-orders --------------------------------------------------------------
def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def po_item(seq: str, asin: str, amount: int, unit: str = "Eaches", size: int | None = None,
            backorder: bool = False, cost: str = "10.00") -> Json:  # fmt: skip
    """A PO line as getPurchaseOrders returns it (the e2e tests' too)."""
    qty: Json = {"amount": amount, "unitOfMeasure": unit}
    if size is not None:
        qty["unitSize"] = size
    return {
        "itemSequenceNumber": seq,
        "amazonProductIdentifier": asin,
        "vendorProductIdentifier": f"V{asin}",
        "orderedQuantity": qty,
        "isBackOrderAllowed": backorder,
        "netCost": {"currencyCode": "USD", "amount": cost},
    }


def purchase_order(
    number: str,
    items: list[Json],
    when: datetime = NOW,
    *,
    date: datetime | None = None,
    changed: datetime | None = None,
) -> Json:
    """An SP-API Order as getPurchaseOrders returns it, with a ship-to address: dated
    ``date`` (default 30 minutes before ``when``), shipped 1 to 5 days after ``when``;
    ``changed``: its ``purchaseOrderChangedDate``."""
    ordered = _iso(date if date is not None else when - timedelta(minutes=30))
    details: Json = {
        "purchaseOrderDate": ordered,
        "purchaseOrderStateChangedDate": ordered,
        "purchaseOrderType": "RegularOrder",
        "buyingParty": {"partyId": "AMAZON"},
        "sellingParty": {"partyId": "VENDOR1"},
        "shipToParty": {"partyId": "ABE2"},
        "billToParty": {"partyId": "AMAZON"},
        "shipWindow": f"{_iso(when + timedelta(days=1))}--{_iso(when + timedelta(days=5))}",
        "items": items,
    }
    if changed is not None:
        details["purchaseOrderChangedDate"] = _iso(changed)
    return {"purchaseOrderNumber": number, "purchaseOrderState": "New", "orderDetails": details}


def _po_template(rng: random.Random, n: int) -> tuple[bytes | None, Json]:
    number = f"FZX{n:07d}"
    items = [po_item(str(i + 1), f"B0FZX{rng.randrange(10**5):05d}", rng.randrange(1, 9))
             for i in range(rng.randrange(1, 4))]  # fmt: skip
    return number.encode(), purchase_order(number, items)


def _po_duplicate_line(rng: random.Random, key: bytes | None, v: Json) -> Case:
    items = v["orderDetails"]["items"]
    items.append(copy.deepcopy(items[0]))
    return Case(key, dumps(v), "duplicate_line", "dlq")


def _po_bad_window(rng: random.Random, key: bytes | None, v: Json) -> Case:
    v["orderDetails"]["shipWindow"] = rng.choice(
        ["tomorrow", "2026-12-05T00:00:00Z--2026-12-01T00:00:00Z", "--", "2026-12-01--2026-12-05"]
    )
    return Case(key, dumps(v), "bad_window", "dlq")


def _po_no_items(rng: random.Random, key: bytes | None, v: Json) -> Case:
    v["orderDetails"]["items"] = []
    return Case(key, dumps(v), "no_items", "dlq")


def _po_unknown_product(rng: random.Random, key: bytes | None, v: Json) -> Case:
    # a valid PO naming products nobody maps: decided Rejected, not a dead letter
    return Case(key, dumps(v), "unknown_product", "ok")


PURCHASE_ORDERS = Profile(
    topic="amazon.purchase-orders",
    template=_po_template,
    required=[
        ("purchaseOrderNumber",),
        ("purchaseOrderState",),
        ("orderDetails",),
        ("orderDetails", "purchaseOrderDate"),
        ("orderDetails", "purchaseOrderStateChangedDate"),
        ("orderDetails", "items"),
        ("orderDetails", "items", 0, "itemSequenceNumber"),
        ("orderDetails", "items", 0, "orderedQuantity"),
        ("orderDetails", "items", 0, "orderedQuantity", "amount"),
        ("orderDetails", "items", 0, "isBackOrderAllowed"),
    ],
    typed={
        ("purchaseOrderNumber",): "str",
        ("orderDetails",): "obj",
        ("orderDetails", "items"): "list",
        ("orderDetails", "purchaseOrderDate"): "datetime",
        ("orderDetails", "items", 0, "orderedQuantity", "amount"): "strict_int",
        ("orderDetails", "items", 0, "isBackOrderAllowed"): "bool",
        ("orderDetails", "items", 0, "itemSequenceNumber"): "str",
        ("orderDetails", "items", 0, "netCost"): "obj",
    },
    enums={
        ("purchaseOrderState",): "dlq",
        ("orderDetails", "purchaseOrderType"): "dlq",
        ("orderDetails", "items", 0, "orderedQuantity", "unitOfMeasure"): "dlq",
    },
    quantities=[("orderDetails", "items", 0, "orderedQuantity", "amount")],
    # a non-positive amount is a held / cancelled line (an owned exception), not a dead
    # letter; a 64-bit-overflowing amount must be dead-lettered or decided, never crash
    quantity_expect={"negative": "ok", "zero": "ok", "huge": "any", "beyond64": "any"},
    strings=[
        ("orderDetails", "items", 0, "amazonProductIdentifier"),
        ("orderDetails", "shipToParty", "partyId"),
    ],
    key_path=("purchaseOrderNumber",),
    tombstone="dlq",
    no_key="ok",  # the intake re-keys by PO number itself
    nan="dlq",
    oversize="any",
    special={
        "duplicate_line": _po_duplicate_line,
        "bad_window": _po_bad_window,
        "no_items": _po_no_items,
        "unknown_product": _po_unknown_product,
    },
)


# --- wms.dispatches --------------------------------------------------------------------------
def gs1_check(digits: str) -> str:
    """``digits`` + the GS1 mod-10 check digit."""
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(digits)))
    return digits + str((10 - total % 10) % 10)


def dispatch_record(dispatch_id: str, shipment_id: str, po: str, sku: str, eaches: int,
                    serial: int, when: datetime = NOW) -> Json:  # fmt: skip
    """An LTL dispatch: one carton of ``eaches`` of ``sku`` on one pallet."""
    carton = gs1_check(f"00614141{serial % 10**9:09d}")
    pallet = gs1_check(f"30614141{serial % 10**9:09d}")
    return {
        "dispatchId": dispatch_id,
        "shipmentId": shipment_id,
        "purchaseOrderNumber": po,
        "shipFromWarehouse": "fz-wh",
        "shippedDate": (when - timedelta(hours=1)).isoformat(),
        "estimatedDeliveryDate": (when + timedelta(days=2)).isoformat(),
        "shipmentType": "LessThanTruckLoad",
        "transportationMode": "Road",
        "carrierScac": "ODFL",
        "proNumber": f"PRO-{shipment_id}",
        "billOfLading": f"BOL-{shipment_id}",
        "isCorrection": False,
        "cartons": [{"sscc": carton, "items": [{"sku": sku, "quantityEaches": eaches}]}],
        "pallets": [{"sscc": pallet, "cartons": [carton]}],
    }


def _dispatch_template(rng: random.Random, n: int) -> tuple[bytes | None, Json]:
    po = f"FZX{rng.randrange(10**7):07d}"
    d = dispatch_record(f"D-FZX-{n}", f"S-FZX-{n}", po, f"FZ-X-{rng.randrange(50)}",
                        rng.randrange(1, 20), rng.randrange(10**9))  # fmt: skip
    return po.encode(), d


DISPATCHES = Profile(
    topic="wms.dispatches",
    template=_dispatch_template,
    required=[
        ("dispatchId",),
        ("shipmentId",),
        ("purchaseOrderNumber",),
        ("shipFromWarehouse",),
        ("shippedDate",),
        ("shipmentType",),
        ("cartons", 0, "sscc"),
        ("cartons", 0, "items", 0, "sku"),
        ("cartons", 0, "items", 0, "quantityEaches"),
    ],
    typed={
        ("dispatchId",): "str",
        ("purchaseOrderNumber",): "str",
        ("shippedDate",): "aware_datetime",
        ("cartons",): "list",
        ("isCorrection",): "bool",
        ("cartons", 0, "items", 0, "quantityEaches"): "strict_int",
        ("trackingNumbers",): "list",
    },
    enums={("shipmentType",): "dlq", ("transportationMode",): "dlq"},
    quantities=[("cartons", 0, "items", 0, "quantityEaches")],
    quantity_expect={"negative": "dlq", "zero": "dlq", "huge": "any", "beyond64": "any"},
    strings=[("shipmentId",), ("cartons", 0, "items", 0, "sku"), ("carrierScac",)],
    key_path=("purchaseOrderNumber",),
    tombstone="dlq",
    no_key="ok",
    nan="dlq",
    oversize="any",
)


# --- ct.inventory-commands -------------------------------------------------------------
def inventory_command(command_id: str, action: str, sku: str, channel: str, quantity: int,
                      po: str = "FZX0000000", seq: str = "1") -> Json:  # fmt: skip
    return {
        "commandId": command_id,
        "action": action,
        "sku": sku,
        "supplyChannel": channel,
        "quantity": quantity,
        "purchaseOrderNumber": po,
        "itemSequenceNumber": seq,
        "createdAt": "2026-11-27T08:15:02.120Z",
    }


def _command_template(rng: random.Random, n: int) -> tuple[bytes | None, Json]:
    # a handful of unknown SKUs: each distinct (sku, channel) costs the worker one lookup
    sku = f"FZ-X-{rng.randrange(8)}"
    return sku.encode(), inventory_command(f"fz-x:{n}", "reserve", sku, "fz-none", 1)


COMMANDS = Profile(
    topic="ct.inventory-commands",
    template=_command_template,
    required=[
        ("commandId",),
        ("action",),
        ("sku",),
        ("supplyChannel",),
        ("quantity",),
        ("createdAt",),
    ],
    typed={
        ("commandId",): "str",
        ("sku",): "str",
        ("quantity",): "strict_int",
        ("createdAt",): "aware_datetime",
    },
    enums={("action",): "dlq"},
    quantities=[("quantity",)],
    quantity_expect={"negative": "dlq", "zero": "dlq", "huge": "dlq", "beyond64": "dlq"},
    # an unknown entry is dead-lettered too, after the lookup
    strings=[("sku",), ("supplyChannel",), ("commandId",)],
    key_path=("sku",),
    tombstone="dlq",
    no_key="dlq",
    nan="any",
    oversize="any",
    accepted="dlq",
)

PROFILES: dict[str, Profile] = {
    p.topic: p for p in (CT_MESSAGES, MAPPINGS, PURCHASE_ORDERS, DISPATCHES, COMMANDS)
}


# --- the mutations ---------------------------------------------------------------------
Mutation = Callable[[Profile, random.Random, bytes | None, Json], Case]


def _not_json(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    raw = dumps(v)
    choice = rng.randrange(3)
    if choice == 0:
        value = rng.choice(JUNK_BYTES)
    elif choice == 1:  # cut off mid-record (a truncated write)
        value = raw[: rng.randrange(1, max(2, len(raw) - 1))]
    else:  # random bytes
        value = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    if _is_json(value):  # random bytes can spell JSON ("7", "[]"): never an object here
        return Case(key, value, "non_object", "dlq")
    return Case(key, value, "not_json", "dlq")


def _is_json(raw: bytes) -> bool:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True


def _invalid_utf8(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    raw = dumps(v)
    at = raw.index(b'"', 1) + 1  # inside the first key or string
    return Case(key, raw[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]) + raw[at:],
                "invalid_utf8", "dlq")  # fmt: skip


def _non_object(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    return Case(key, dumps(rng.choice(NON_OBJECTS)), "non_object", "dlq")


def _deep_nesting(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    depth = rng.choice([600, 5_000])
    return Case(key, b"[" * depth + b"]" * depth, "deep_nesting", "dlq")


def _tombstone(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    return Case(key, None, "tombstone", p.tombstone)


def _missing(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    path = rng.choice(p.required)
    del_path(v, path)
    return Case(key, dumps(v), "missing_field", "dlq")


def _wrong_type(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    path, kind = rng.choice(list(p.typed.items()))
    set_path(v, path, _wrong_value(kind, rng))
    if p.key_path is not None and path == p.key_path:
        key = str(get_path(v, path)).encode()  # the key still matches what was written
    return Case(key, dumps(v), "wrong_type", "dlq")


def _unknown_enum(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    path, expect = rng.choice(list(p.enums.items()))
    set_path(v, path, rng.choice(["Teleported", "", "new", "\U0001f47e", "NEW ", "null"]))
    return Case(key, dumps(v), "unknown_enum", expect)


def _quantity(cls: str) -> Mutation:
    def mutate(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
        path = rng.choice(p.quantities)
        value = {
            "negative": -rng.randrange(1, 10**6),
            "zero": 0,
            "huge": rng.choice([10**13, 10**15, 10**18, 2**63 - 1]),
            "beyond64": rng.choice([2**64, 2**70, 10**30]),
        }[cls]
        set_path(v, path, value)
        return Case(key, dumps(v), f"{cls}_quantity", p.quantity_expect.get(cls, "any"))

    return mutate


def _unicode(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    path = rng.choice(p.strings)
    text = rng.choice(UNICODE) + str(rng.randrange(1000))
    set_path(v, path, text)
    if p.key_path is not None and path == p.key_path:
        key = text.encode()
    return Case(key, dumps(v), "unicode", "any")


def _extra_fields(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    v[rng.choice(UNICODE)] = {"nested": [1, 2.5, None, rng.choice(UNICODE)]}
    v["x-extra"] = rng.random()
    return Case(key, dumps(v), "extra_fields", "ok")


def _nan(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    raw = dumps(v)
    literal = rng.choice([b"NaN", b"Infinity", b"-Infinity"])
    return Case(key, raw[:-1] + b',"x-number":' + literal + b"}", "nan_literal", p.nan)


def _duplicate_keys(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    raw = dumps(v)
    first = next(iter(v))
    twin = dumps({first: rng.choice(NON_OBJECTS)})[1:-1]
    return Case(key, b"{" + twin + b"," + raw[1:], "duplicate_json_keys", "any")


def _key_mismatch(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    other = b"OTHER-" + str(rng.randrange(10**6)).encode()
    return Case(other, dumps(v), "key_mismatch", "dlq" if p.key_path is not None else "ok")


def _no_key(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    return Case(None, dumps(v), "no_key", p.no_key)


def _oversize(p: Profile, rng: random.Random, key: bytes | None, v: Json) -> Case:
    v["x-padding"] = "x" * OVERSIZE_BYTES
    return Case(key, dumps(v), "oversize", p.oversize)


MUTATIONS: dict[str, Mutation] = {
    "not_json": _not_json,
    "invalid_utf8": _invalid_utf8,
    "non_object": _non_object,
    "deep_nesting": _deep_nesting,
    "tombstone": _tombstone,
    "missing_field": _missing,
    "wrong_type": _wrong_type,
    "unknown_enum": _unknown_enum,
    "negative_quantity": _quantity("negative"),
    "zero_quantity": _quantity("zero"),
    "huge_quantity": _quantity("huge"),
    "beyond64_quantity": _quantity("beyond64"),
    "unicode": _unicode,
    "extra_fields": _extra_fields,
    "nan_literal": _nan,
    "duplicate_json_keys": _duplicate_keys,
    "key_mismatch": _key_mismatch,
    "no_key": _no_key,
    "oversize": _oversize,
}
# Each is > 1 MB: a few per run prove the path without making the run about bandwidth.
RARE = {"oversize": 3, "deep_nesting": 20}


def kinds(topic: str) -> list[str]:
    """Every mutation name that applies to ``topic``."""
    p = PROFILES[topic]
    out = [k for k in MUTATIONS if not (k == "unknown_enum" and not p.enums)]
    return out + list(p.special)


def mutate(topic: str, kind: str, rng: random.Random, n: int) -> Case:
    """Record number ``n`` of ``topic``, broken the ``kind`` way."""
    p = PROFILES[topic]
    key, value = p.template(rng, n)
    value = copy.deepcopy(value)
    case = (
        p.special[kind](rng, key, value)
        if kind in p.special
        else MUTATIONS[kind](p, rng, key, value)
    )
    if case.expect == "ok" and p.accepted != "ok":
        case = Case(case.key, case.value, case.kind, p.accepted)
    return case


def generate(
    topic: str, seed: int, n: int, *, exclude: frozenset[str] = frozenset()
) -> Iterator[Case]:
    """``n`` bad records for ``topic``, reproducible from ``seed``; every kind appears.

    ``exclude`` leaves kinds out (e.g. ones that trigger a known bug, tested on their own).
    """
    rng = random.Random(f"{topic}:{seed}")
    names = [k for k in kinds(topic) if k not in exclude]
    budget = {k: RARE[k] for k in names if k in RARE}
    common = [k for k in names if k not in RARE]
    # the first records walk through every kind once, the rest draw at random
    for i in range(n):
        kind = names[i] if i < len(names) else rng.choice(names)
        if kind in budget:
            if budget[kind] <= 0:
                kind = rng.choice(common)
            else:
                budget[kind] -= 1
        yield mutate(topic, kind, rng, i)


# --- Hypothesis ------------------------------------------------------------------------
def bad_cases(topic: str, *, exclude: frozenset[str] = frozenset()) -> st.SearchStrategy[Case]:
    """A strategy over the same mutations (oversize left out: Hypothesis shrinks by size)."""
    names = [k for k in kinds(topic) if k not in exclude and k != "oversize"]
    return st.builds(
        lambda kind, rng, n: mutate(topic, kind, rng, n),
        st.sampled_from(names),
        st.randoms(use_true_random=False),
        st.integers(0, 10**6),
    )


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def with_junk(topic: str) -> st.SearchStrategy[bytes]:
    """A valid template with one field (anywhere in it) replaced by any JSON value."""

    def build(rng: random.Random, junk: Any) -> bytes:
        _, v = PROFILES[topic].template(rng, 0)
        paths = list(_paths(v))
        path = rng.choice(paths)
        set_path(v, path, junk)
        return dumps(v)

    return st.builds(build, st.randoms(use_true_random=False), json_values)


def _paths(v: Any, prefix: Path = ()) -> Iterator[Path]:
    if isinstance(v, dict):
        for k, x in v.items():
            yield (*prefix, k)
            yield from _paths(x, (*prefix, k))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield (*prefix, i)
            yield from _paths(x, (*prefix, i))

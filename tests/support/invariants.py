"""The invariants of docs/reliability.md, checked from the topics after any fault.

``check(topics, ...)`` reads what is on the topics (and, when given, the commercetools
emulator's entries and what the SP-API sandbox received) and returns every violation of:

1. **inputs**: every input record is reflected or in its ``<topic>.dlq`` with a non-empty
   reason, its source topic / partition / offset and its original bytes;
2. **availability**: for every mapped SKU, what was last published to Amazon equals master
   stock (latest state per supply channel, eligible channels only) minus the safety buffer
   minus the Amazon allocations not yet visible in that stock (reservations and releases on
   ``ct.inventory-commands``); computed from the records, not from the worker's state;
3. **acknowledgements**: one acknowledgement content per PO (per revision), resends
   identical on the topic and at the sandbox, and every accepted line backed by exactly its
   reservation (accepted eaches = reserved - released for that PO line);
4. **commands**: one content per command id; with the emulator, each id applied at most once
   and every entry's quantity = the stock the test set - reserves + releases applied to it;
5. **ASNs**: every shipment confirmation (topic and sandbox) valid against Amazon's model,
   and against the domain's own rules when a checker for them is given.

It is deliberately independent of the worker's code: it re-derives state from raw records.
It assumes ``ct.inventory-commands`` carries the worker's own commands only (as in
production); hand-made commands on it are not allocations the worker made.
"""

from __future__ import annotations

import base64
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.config import Settings
from tests.support.kafka import Record, read_all

LEDGER_FIELD = "streamsAppliedCommands"  # the custom field the command flow keeps per entry


@dataclass
class Topics:
    """Records of every topic the checker reads, as ``read_all`` returns them."""

    ct_messages: list[Record] = field(default_factory=list)
    sku_mappings: list[Record] = field(default_factory=list)
    purchase_orders: list[Record] = field(default_factory=list)
    dispatches: list[Record] = field(default_factory=list)
    inventory_updates: list[Record] = field(default_factory=list)
    po_acknowledgements: list[Record] = field(default_factory=list)
    shipment_confirmations: list[Record] = field(default_factory=list)
    inventory_commands: list[Record] = field(default_factory=list)
    exceptions: list[Record] = field(default_factory=list)
    # input role ("ct_messages", ...) -> records of its dead-letter topic
    dlq: dict[str, list[Record]] = field(default_factory=dict)
    # input role -> topic name (what a dead letter's source.topic must say)
    names: dict[str, str] = field(default_factory=dict)


INPUTS = ("ct_messages", "sku_mappings", "purchase_orders", "dispatches", "inventory_commands")


async def collect(s: Settings, timeout: float = 30.0) -> Topics:
    """Read every topic of ``s`` (the whole of each) into :class:`Topics`."""
    names = {
        "ct_messages": s.topic_ct_messages,
        "sku_mappings": s.topic_sku_mappings,
        "purchase_orders": s.topic_purchase_orders,
        "dispatches": s.topic_dispatches,
        "inventory_commands": s.topic_inventory_commands,
    }
    bs = s.kafka_bootstrap
    t = Topics(names=names)
    for role, name in names.items():
        setattr(t, role, await read_all(bs, name, timeout))
        t.dlq[role] = await read_all(bs, s.dlq_topic(name), timeout)
    t.inventory_updates = await read_all(bs, s.topic_inventory_updates, timeout)
    t.po_acknowledgements = await read_all(bs, s.topic_po_acknowledgements, timeout)
    t.shipment_confirmations = await read_all(bs, s.topic_shipment_confirmations, timeout)
    t.exceptions = await read_all(bs, s.topic_exceptions, timeout)
    return t


@dataclass
class Report:
    violations: list[str] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)  # what was looked at, for the docs

    def fail(self, text: str) -> None:
        self.violations.append(text)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self, limit: int = 20) -> str:
        head = "\n".join(self.violations[:limit])
        more = len(self.violations) - limit
        return (
            head
            + (f"\n... and {more} more" if more > 0 else "")
            + f"\nchecked: {dict(self.checked)}"
        )


def check(
    topics: Topics,
    *,
    default_channels: tuple[str, ...] = (),
    default_buffer: int = 0,
    ct_entries: list[dict[str, Any]] | None = None,
    ct_base: Mapping[tuple[str, str], int] | None = None,
    sandbox_acks: list[dict[str, Any]] | None = None,
    sandbox_asns: list[dict[str, Any]] | None = None,
    asn_rules: Callable[[dict[str, Any]], list[str]] | None = None,
) -> Report:
    """Every violation of the invariants (see the module docstring); empty = all hold.

    ``ct_entries``: the emulator's inventory entries at the end (with the command ledger);
    ``ct_base``: (sku, channel id) -> quantityOnStock the test set, before any command;
    ``sandbox_acks`` / ``sandbox_asns``: ``SandboxControl.received(...)`` of
    submitAcknowledgement / SubmitShipmentConfirmations; ``asn_rules``: extra per-ASN checks.
    """
    r = Report()
    dead = _check_dead_letters(topics, r)
    commands = _commands(topics, dead, r)
    applied = _applied_versions(ct_entries, r) if ct_entries is not None else None
    _check_availability(topics, dead, commands, applied, default_channels, default_buffer, r)
    _check_acks(topics, dead, commands, sandbox_acks, r)
    _check_reflected(topics, dead, applied, r)
    if ct_entries is not None and ct_base is not None:
        _check_ct_quantities(topics, ct_entries, ct_base, commands, dead, r)
    _check_asns(topics, sandbox_asns, asn_rules, r)
    return r


# --- 1. dead letters -------------------------------------------------------------------------
Where = tuple[int, int]  # (partition, offset)


def _check_dead_letters(t: Topics, r: Report) -> dict[str, set[Where]]:
    """Dead letters are well formed and point at real input records; returns them per role."""
    dead: dict[str, set[Where]] = {}
    for role in INPUTS:
        records = {(x.partition, x.offset): x for x in getattr(t, role)}
        name = t.names.get(role)
        dead[role] = set()
        for d in t.dlq.get(role, []):
            v = _json(d)
            if not isinstance(v, dict):
                r.fail(f"{role}.dlq@{d.offset}: not a dead-letter record")
                continue
            r.checked["dead letters"] += 1
            err, src = v.get("error"), v.get("source") or {}
            where = (src.get("partition"), src.get("offset"))
            if not isinstance(err, str) or not err.strip():
                r.fail(f"{role}.dlq@{d.offset}: no reason")
            if name is not None and src.get("topic") != name:
                r.fail(f"{role}.dlq@{d.offset}: source topic {src.get('topic')!r} is not {name}")
            original = records.get(where)  # type: ignore[arg-type]
            if original is None:
                r.fail(f"{role}.dlq@{d.offset}: source {where} is no record of {role}")
                continue
            raw = v.get("valueBase64")
            if (base64.b64decode(raw) if raw is not None else None) != original.value:
                r.fail(f"{role}.dlq@{d.offset}: keeps other bytes than {role}{where}")
            dead[role].add(where)  # type: ignore[arg-type]
    return dead


# --- 4. commands -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    id: str
    action: str
    sku: str
    channel: str
    quantity: int
    po: str | None
    seq: str | None

    @property
    def signed(self) -> int:
        """Eaches this command takes from stock for Amazon (reserve +, release -)."""
        return self.quantity if self.action == "reserve" else -self.quantity


def _commands(t: Topics, dead: dict[str, set[Where]], r: Report) -> dict[str, Command]:
    """Distinct commands by id (one content each). Dead-lettered ones are kept: the worker
    still counts an accepted allocation whose reservation failed (it is never reflected)."""
    out: dict[str, Command] = {}
    for x in t.inventory_commands:
        v = _json(x)
        try:
            c = Command(v["commandId"], v["action"], v["sku"], v["supplyChannel"],
                        int(v["quantity"]), v.get("purchaseOrderNumber"),
                        v.get("itemSequenceNumber"))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            if (x.partition, x.offset) not in dead.get("inventory_commands", set()):
                r.fail(f"inventory_commands{(x.partition, x.offset)}: taken but not a command")
            continue
        r.checked["command records"] += 1
        if c.id in out and out[c.id] != c:
            r.fail(f"command {c.id}: two contents {out[c.id]} and {c}")
        out.setdefault(c.id, c)
    return out


def _applied_versions(entries: list[dict[str, Any]], r: Report) -> dict[str, tuple[str, int]]:
    """command id -> (entry id, entry version it was applied at), from the emulator's ledger."""
    out: dict[str, tuple[str, int]] = {}
    for e in entries:
        fields = ((e.get("custom") or {}).get("fields") or {}).get(LEDGER_FIELD) or []
        ids: Counter[str] = Counter()
        for element in fields:
            version, _, cid = str(element).partition(":")
            ids[cid] += 1
            if cid in out and out[cid][0] != e["id"]:
                r.fail(f"command {cid} applied to two entries: {out[cid][0]} and {e['id']}")
            out[cid] = (str(e["id"]), int(version) if version.isdigit() else -1)
        for cid, n in ids.items():
            if n > 1:
                r.fail(f"command {cid} applied {n} times to entry {e['id']}")
        r.checked["ledger entries"] += 1
    return out


def _check_ct_quantities(
    t: Topics,
    entries: list[dict[str, Any]],
    base: Mapping[tuple[str, str], int],
    commands: dict[str, Command],
    dead: dict[str, set[Where]],
    r: Report,
) -> None:
    """Final quantity = what the test set - reserves + releases (each applied once)."""
    failed = {
        str((_json(x) or {}).get("commandId"))
        for x in t.inventory_commands
        if (x.partition, x.offset) in dead.get("inventory_commands", set())
    }
    by_entry: dict[tuple[str, str], dict[str, Any]] = {
        (str(e.get("sku")), str((e.get("supplyChannel") or {}).get("id", ""))): e for e in entries
    }
    for key, qty in base.items():
        e = by_entry.get(key)
        if e is None:
            r.fail(f"entry {key} missing in commercetools")
            continue
        fields = ((e.get("custom") or {}).get("fields") or {}).get(LEDGER_FIELD) or []
        ledger = {str(x).partition(":")[2] for x in fields}
        mine = [c for c in commands.values() if (c.sku, c.channel) == key and c.id not in failed]
        unapplied = [c.id for c in mine if c.id not in ledger]
        if unapplied:
            r.fail(f"entry {key}: commands never applied: {unapplied[:5]}")
        want = qty - sum(c.signed for c in mine if c.id in ledger)
        r.checked["entries reconciled"] += 1
        if e.get("quantityOnStock") != want:
            r.fail(f"entry {key}: quantityOnStock {e.get('quantityOnStock')} != {want} "
                   f"(set {qty}, {len(mine)} commands)")  # fmt: skip


# --- 2. availability -------------------------------------------------------------------------
@dataclass
class _Entry:
    entry: str
    version: int
    available: int


def _stock(t: Topics, dead: set[Where]) -> dict[str, dict[str, _Entry]]:
    """sku -> channel -> the latest state, replayed from ct.messages independently."""
    out: dict[str, dict[str, _Entry]] = defaultdict(dict)
    gone: dict[str, int] = {}
    for x in t.ct_messages:
        if (x.partition, x.offset) in dead:
            continue
        d = _json(x)
        if isinstance(d, dict) and "specversion" in d:
            d = d.get("data")
        if not isinstance(d, dict) or (d.get("resource") or {}).get("typeId") != "inventory-entry":
            continue
        typ, eid, version = d.get("type"), d["resource"].get("id"), d.get("resourceVersion")
        if typ == "InventoryEntryCreated":
            e = d.get("inventoryEntry") or {}
            sku, ch, avail = e.get("sku"), _channel(e), e.get("availableQuantity")
        elif typ in ("InventoryEntryQuantitySet", "InventoryEntryDeleted"):
            ids = d.get("resourceUserProvidedIdentifiers") or {}
            sku, ch, avail = (
                d.get("sku") or ids.get("sku"),
                _channel(d),
                d.get("newAvailableQuantity"),
            )
        else:
            continue
        if not isinstance(sku, str) or not isinstance(version, int):
            continue
        if gone.get(eid, -1) >= version:
            continue
        cur = out[sku].get(ch)
        if cur is not None and cur.entry == eid and cur.version >= version:
            continue
        if typ == "InventoryEntryDeleted":
            gone[eid] = version
            if cur is not None and cur.entry == eid:
                del out[sku][ch]
        elif isinstance(avail, int):
            out[sku][ch] = _Entry(eid, version, avail)
    return out


def _channel(d: dict[str, Any]) -> str:
    ref = d.get("supplyChannel")
    return str(ref.get("id") or ref.get("key") or "") if isinstance(ref, dict) else ""


def _mappings(t: Topics, dead: set[Where]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for x in sorted(t.sku_mappings, key=lambda x: (x.partition, x.offset)):
        if (x.partition, x.offset) in dead or x.key is None:
            continue
        sku = x.key.decode("utf-8", "replace")
        if x.value is None:
            out.pop(sku, None)
        elif isinstance(v := _json(x), dict):
            out[sku] = v
    return out


def _check_availability(
    t: Topics,
    dead: dict[str, set[Where]],
    commands: dict[str, Command],
    applied: dict[str, tuple[str, int]] | None,
    default_channels: tuple[str, ...],
    default_buffer: int,
    r: Report,
) -> None:
    stock = _stock(t, dead.get("ct_messages", set()))
    maps = _mappings(t, dead.get("sku_mappings", set()))
    published: dict[str, int] = {}
    for x in t.inventory_updates:  # read_all sorts by (partition, offset); a SKU is one key
        v = _json(x)
        published[v["sku"]] = v["availableQuantity"]["amount"]
    open_by_sku: dict[str, int] = defaultdict(int)
    for c in commands.values():
        entry = stock.get(c.sku, {}).get(c.channel)
        seen = applied is not None and c.id in applied and entry is not None
        if seen and applied is not None and applied[c.id][1] <= entry.version:  # type: ignore[union-attr]
            continue  # commercetools' stock, as last delivered, already shows it
        open_by_sku[c.sku] += c.signed
    for sku, m in maps.items():
        if not (m.get("asin") or m.get("vendorProductIdentifier")):
            continue  # unmapped to Amazon: never published
        if sku not in stock and sku not in published:
            continue  # no stock ever seen: nothing to say
        allowed = tuple(m.get("amazonChannels") or ()) or default_channels
        total = sum(max(0, e.available) for ch, e in stock.get(sku, {}).items()
                    if not allowed or ch in allowed)  # fmt: skip
        buffer = m.get("safetyBuffer") or default_buffer
        want = 0 if m.get("obsolete") else max(0, total - buffer - open_by_sku[sku])
        r.checked["skus"] += 1
        got = published.get(sku)
        if got != want:
            r.fail(f"SKU {sku}: last published {got}, but master {total} - buffer {buffer} - "
                   f"open allocations {open_by_sku[sku]} = {want}")  # fmt: skip


# --- 3. acknowledgements ----------------------------------------------------------------------
def _canon(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _check_acks(
    t: Topics,
    dead: dict[str, set[Where]],
    commands: dict[str, Command],
    sandbox: list[dict[str, Any]] | None,
    r: Report,
) -> None:
    revisions: dict[str, set[str]] = defaultdict(set)
    for x in t.purchase_orders:
        v = _json(x)
        if (x.partition, x.offset) in dead.get("purchase_orders", set()) or not isinstance(v, dict):
            continue
        det = v.get("orderDetails") or {}
        rev = det.get("purchaseOrderChangedDate") or det.get("purchaseOrderDate")
        revisions[str(v.get("purchaseOrderNumber"))].add(str(rev))
    contents: dict[str, dict[bytes, dict[str, Any]]] = defaultdict(dict)
    for x in t.po_acknowledgements:
        v = _json(x)
        po = x.key.decode() if x.key else None
        if not isinstance(v, dict) or v.get("purchaseOrderNumber") != po:
            r.fail(f"acknowledgement at offset {x.offset}: key {po!r} is not its PO")
            continue
        contents[po][_canon(v)] = v
    reserved: dict[tuple[str | None, str | None], int] = defaultdict(int)
    for c in commands.values():
        reserved[(c.po, c.seq)] += c.signed
    for po, by_content in contents.items():
        r.checked["acknowledged POs"] += 1
        if len(by_content) > max(1, len(revisions.get(po, ()))):
            r.fail(f"PO {po}: {len(by_content)} different acknowledgements")
        ack = next(reversed(by_content.values()))
        for item in ack.get("items") or []:
            eaches = 0
            for a in item.get("itemAcknowledgements") or []:
                if a.get("acknowledgementCode") == "Accepted":
                    q = a.get("acknowledgedQuantity") or {}
                    size = q.get("unitSize") or 1 if q.get("unitOfMeasure") == "Cases" else 1
                    eaches += int(q.get("amount", 0)) * int(size)
            held = reserved.get((po, item.get("itemSequenceNumber")), 0)
            r.checked["acknowledged lines"] += 1
            if held != eaches:
                r.fail(f"PO {po} line {item.get('itemSequenceNumber')}: accepted {eaches} "
                       f"eaches but {held} reserved")  # fmt: skip
    for e in sandbox or []:
        if e.get("status") != 202:
            continue
        for ack in (e.get("body") or {}).get("acknowledgements") or []:
            po = ack.get("purchaseOrderNumber")
            r.checked["acknowledgements received"] += 1
            if _canon(ack) not in contents.get(po, {}):
                r.fail(f"PO {po}: the sandbox received an acknowledgement not on the topic")
    sent: dict[str, set[bytes]] = defaultdict(set)
    for e in sandbox or []:
        if e.get("status") == 202:
            for ack in (e.get("body") or {}).get("acknowledgements") or []:
                sent[ack.get("purchaseOrderNumber")].add(_canon(ack))
    for po, bodies in sent.items():
        if len(bodies) > max(1, len(revisions.get(po, ()))):
            r.fail(f"PO {po}: Amazon accepted {len(bodies)} different acknowledgements")


# --- 1. inputs reflected ----------------------------------------------------------------------
def _check_reflected(
    t: Topics, dead: dict[str, set[Where]], applied: dict[str, tuple[str, int]] | None, r: Report
) -> None:
    acked = {x.key.decode() for x in t.po_acknowledgements if x.key}
    refs = [(_json(x) or {}).get("refs") or {} for x in t.exceptions]
    exc_pos = {x.get("purchaseOrderNumber") for x in refs}
    exc_shipments = {x.get("shipmentId") for x in refs}
    asns = {x.key.decode() for x in t.shipment_confirmations if x.key}
    for x in t.purchase_orders:
        if (x.partition, x.offset) in dead.get("purchase_orders", set()):
            continue
        v = _json(x)
        po = v.get("purchaseOrderNumber") if isinstance(v, dict) else None
        r.checked["POs"] += 1
        if not isinstance(po, str):
            r.fail(f"purchase_orders{(x.partition, x.offset)}: taken but names no PO")
        elif po not in acked and po not in exc_pos:
            r.fail(f"PO {po}: neither acknowledged nor an owned exception")
    for x in t.dispatches:
        if (x.partition, x.offset) in dead.get("dispatches", set()):
            continue
        v = _json(x) if x.value is not None else None
        sid = v.get("shipmentId") if isinstance(v, dict) else None
        po = v.get("purchaseOrderNumber") if isinstance(v, dict) else None
        r.checked["dispatches"] += 1
        if sid not in asns and sid not in exc_shipments and po not in exc_pos:
            r.fail(f"dispatch {sid} (PO {po}): no ASN and no exception")
    for x in t.sku_mappings:
        if (x.partition, x.offset) in dead.get("sku_mappings", set()) or x.value is None:
            continue
        v = _json(x)
        if (
            not isinstance(v, dict)
            or x.key is None
            or v.get("sku") != x.key.decode("utf-8", "replace")
        ):
            r.fail(f"sku_mappings{(x.partition, x.offset)}: taken but its key is not its sku")
    for x in t.ct_messages:
        if (x.partition, x.offset) not in dead.get("ct_messages", set()):
            r.checked["stock messages"] += 1
            if not isinstance(_json(x), dict):
                r.fail(f"ct_messages{(x.partition, x.offset)}: taken but not a JSON object")
    if applied is not None:
        dead_cmds = dead.get("inventory_commands", set())
        for x in t.inventory_commands:
            cid = (_json(x) or {}).get("commandId") if x.value else None
            if (x.partition, x.offset) not in dead_cmds and cid not in applied:
                r.fail(f"command {cid}: neither applied in commercetools nor dead-lettered")


# --- 5. ASNs --------------------------------------------------------------------------------
def _check_asns(
    t: Topics,
    sandbox: list[dict[str, Any]] | None,
    rules: Callable[[dict[str, Any]], list[str]] | None,
    r: Report,
) -> None:
    from streams.adapters.amazon_models import validate

    def one(asn: Any, where: str) -> None:
        r.checked["ASNs validated"] += 1
        problems = validate("vendorShipments", "ShipmentConfirmation", asn)[:3]
        if rules is not None and isinstance(asn, dict):
            problems += rules(asn)
        for p in problems:
            r.fail(f"ASN {where}: {p}")

    for x in t.shipment_confirmations:
        one(_json(x), f"{x.key!r} on the topic")
    for e in sandbox or []:
        if e.get("status") == 202:
            for asn in (e.get("body") or {}).get("shipmentConfirmations") or []:
                one(asn, f"{asn.get('shipmentIdentifier')!r} sent to Amazon")


def _json(x: Record) -> Any:
    if x.value is None:
        return None
    try:
        return orjson.loads(x.value)
    except orjson.JSONDecodeError:
        return None


def by_role(records: Mapping[str, Iterable[Record]]) -> Topics:
    """A :class:`Topics` from a role -> records mapping (for hand-made unit tests)."""
    t = Topics()
    for role, recs in records.items():
        setattr(t, role, list(recs))
    return t

"""ASN checks on the goods: shipped items against the acknowledgement, cartons and pallets.

Quantities are judged in the unit the PO line was acknowledged in; over-shipment counts what
this PO's other shipments already confirmed (``AsnContext.shipped_before``).
"""

from __future__ import annotations

from streams.domain.asn_findings import Code, Findings
from streams.domain.asn_model import AckLine, seq_key
from streams.domain.asn_view import Container, Quantity, ShippedItem
from streams.domain.gs1 import sscc_problem, strip_sscc_ai


def items(f: Findings) -> None:
    if not f.asn.items:
        f.add(Code.NO_SHIPPED_ITEMS, "shippedItems", "the shipment has no shippedItems")
    seen: dict[str, int] = {}
    for item in f.asn.items:
        path = f"shippedItems/{item.index}"
        seq = item.seq
        if seq is None:
            continue  # the model check reports it
        if seq in seen:
            f.add(
                Code.DUPLICATE_ITEM_SEQUENCE,
                f"{path}/itemSequenceNumber",
                f"itemSequenceNumber {seq!r} repeats shippedItems/{seen[seq]}",
            )
            continue
        seen[seq] = item.index
        line = f.ctx.po.line(seq)
        if line is None:
            f.add(
                Code.ITEM_NOT_ACKNOWLEDGED,
                path,
                f"item {seq} ({item.product}) is not a line of PO {f.ctx.po.purchaseOrderNumber}",
            )
            continue
        name = f"item {seq} (SKU {line.sku})"
        _identifiers(f, item, line, name, path)
        eaches = _quantity(f, item.quantity, line, name, f"{path}/shippedQuantity")
        if line.acknowledged_eaches == 0:
            f.add(
                Code.ITEM_NOT_ACKNOWLEDGED,
                path,
                f"{name} ships but PO line {line.itemSequenceNumber} was not accepted "
                "(nothing accepted or backordered)",
            )
        elif eaches is not None:
            before = f.shipped_before.get(seq_key(line.itemSequenceNumber), 0)
            if eaches + before > line.acknowledged_eaches:
                earlier = f" (+ {before} on earlier shipments)" if before else ""
                f.add(
                    Code.QUANTITY_EXCEEDS_ACKNOWLEDGED,
                    f"{path}/shippedQuantity",
                    f"{name} ships {line.describe(eaches)}{earlier} but only "
                    f"{line.describe(line.acknowledged_eaches)} were acknowledged",
                )


def _identifiers(f: Findings, item: ShippedItem, line: AckLine, name: str, path: str) -> None:
    for key, got, expected in (
        ("amazonProductIdentifier", item.asin, line.asin),
        ("vendorProductIdentifier", item.vendor_product, line.vendorProductIdentifier),
    ):
        if got is not None and expected is not None and got != expected:
            f.add(
                Code.IDENTIFIER_MISMATCH,
                f"{path}/{key}",
                f"{name} has {key} {got!r}, the PO line has {expected!r}",
            )


def _quantity(f: Findings, qty: Quantity, line: AckLine, where: str, path: str) -> int | None:
    """Checks one ItemQuantity against the acknowledged unit; returns it in eaches."""
    eaches = qty.eaches(line.case_size)
    if eaches is None:
        return None  # not an integer amount in Cases/Eaches: the model check reports it
    amount: int = qty.amount
    unit, size = qty.unit, qty.size
    if amount <= 0:
        f.add(
            Code.NON_POSITIVE_QUANTITY,
            f"{path}/amount",
            f"{where} ships {amount} {unit}; a shipped quantity is positive",
        )
        return None
    ack = f"acknowledged in {line.unitOfMeasure}"
    if line.unitOfMeasure == "Cases":
        ack += f" of {line.case_size}"
    if unit == "Eaches" and line.unitOfMeasure == "Cases":
        if amount % line.case_size:
            f.add(
                Code.PARTIAL_CASE,
                path,
                f"{where} holds {amount} eaches = {amount / line.case_size:g} cases of "
                f"{line.case_size}; the line was {ack}, ship whole cases",
            )
        else:
            f.add(
                Code.UNIT_MISMATCH,
                f"{path}/unitOfMeasure",
                f"{where} is in Eaches but the line was {ack}; "
                f"send {amount // line.case_size} Cases",
            )
    elif unit == "Cases" and line.unitOfMeasure == "Eaches":
        f.add(
            Code.UNIT_MISMATCH,
            f"{path}/unitOfMeasure",
            f"{where} is in Cases but the line was {ack}",
        )
    elif unit == "Cases" and size != line.case_size:
        got = "no unitSize" if size is None else f"unitSize {size!r}"
        f.add(Code.UNIT_MISMATCH, f"{path}/unitSize", f"{where} has {got}, the line was {ack}")
    return eaches


def containers(f: Findings) -> None:
    held: dict[str, int] = {}  # eaches per item across containers
    ssccs: dict[str, str] = {}  # SSCC -> container name
    carton_seqs: dict[str, str] = {}
    for carton in f.asn.cartons:
        i = carton.index
        if carton.seq is not None:
            if carton.seq in carton_seqs:
                f.add(
                    Code.DUPLICATE_CARTON_SEQUENCE,
                    f"cartons/{i}/cartonSequenceNumber",
                    f"{carton.name} repeats the cartonSequenceNumber of {carton_seqs[carton.seq]}",
                )
            else:
                carton_seqs[carton.seq] = carton.name
        _container_ids(f, carton, f"cartons/{i}/cartonIdentifiers", ssccs)
        _contents(f, carton, f"cartons/{i}/items", held)
    on_pallet: dict[str, str] = {}
    for pallet in f.asn.pallets:
        i, name = pallet.index, pallet.name
        _container_ids(f, pallet, f"pallets/{i}/palletIdentifiers", ssccs)
        ref_path = f"pallets/{i}/cartonReferenceDetails"
        for j, ref in enumerate(pallet.refs):
            where = f"{ref_path}/cartonReferenceNumbers/{j}"
            if not isinstance(ref, str) or ref not in carton_seqs:  # a list would not hash
                f.add(
                    Code.UNKNOWN_CARTON_REFERENCE,
                    where,
                    f"{name} references carton {ref!r}, which is not a "
                    "cartonSequenceNumber of this shipment",
                )
            elif ref in on_pallet:
                f.add(
                    Code.CARTON_ON_SEVERAL_PALLETS,
                    where,
                    f"{carton_seqs[ref]} is on {on_pallet[ref]} and on {name}",
                )
            else:
                on_pallet[ref] = name
        count = pallet.count
        if isinstance(count, int) and pallet.refs_given and count != len(pallet.refs):
            f.add(
                Code.CARTON_COUNT_MISMATCH,
                f"{ref_path}/cartonCount",
                f"{name} says cartonCount {count} but references {len(pallet.refs)} cartons",
            )
        _contents(f, pallet, f"pallets/{i}/items", held)
    if f.asn.cartons or f.asn.pallets:
        _sums(f, held)


def _container_ids(f: Findings, box: Container, path: str, ssccs: dict[str, str]) -> None:
    name = box.name
    if not box.has_ids:
        f.add(Code.MISSING_CONTAINER_ID, path, f"{name} has no identifier (SSCC)")
        return
    sid = f.asn.shipment_id_written
    for j, number in box.ssccs:
        where = f"{path}/{j}/containerIdentificationNumber"
        sscc = strip_sscc_ai(number)
        problem = sscc_problem(sscc)
        if problem:
            f.add(Code.INVALID_SSCC, where, f"{name}: SSCC {problem}")
            continue
        if sscc in ssccs:
            f.add(Code.DUPLICATE_SSCC, where, f"{name} repeats SSCC {sscc} of {ssccs[sscc]}")
        else:
            ssccs[sscc] = name
        other = f.ctx.used_ssccs.get(sscc)
        if other is not None and other != sid:
            f.add(
                Code.SSCC_REUSED,
                where,
                f"{name}: SSCC {sscc} was already used by shipment {other!r}; GS1 "
                "forbids reusing an SSCC within one year",
            )


def _contents(f: Findings, box: Container, path: str, held: dict[str, int]) -> None:
    for entry in box.contents:
        ref = entry.ref
        if ref is None:
            continue  # the model check reports it
        if ref not in f.items_by_seq:
            f.add(
                Code.UNKNOWN_ITEM_REFERENCE,
                f"{path}/{entry.index}/itemReference",
                f"{box.name} holds item {ref!r}, which is not in shippedItems",
            )
            continue
        line = f.ctx.po.line(ref)
        if line is None:
            continue  # reported once, on the shipped item
        where = f"{box.name} (item {ref}, SKU {line.sku})"
        qpath = f"{path}/{entry.index}/shippedQuantity"
        eaches = _quantity(f, entry.quantity, line, where, qpath)
        if eaches is not None:
            held[ref] = held.get(ref, 0) + eaches


def _sums(f: Findings, held: dict[str, int]) -> None:
    for seq, item in f.items_by_seq.items():
        line = f.ctx.po.line(seq)
        if line is None:
            continue
        total = item.quantity.eaches(line.case_size)
        inside = held.get(seq, 0)
        if total is not None and total != inside:
            f.add(
                Code.CONTAINER_QUANTITY_MISMATCH,
                f"shippedItems/{item.index}/shippedQuantity",
                f"item {seq} (SKU {line.sku}) ships {line.describe(total)} but its "
                f"cartons and pallets hold {line.describe(inside)}",
            )

"""``streams validate`` / ``streams publish``: records checked as the worker would check them.

A record is checked against its topic's published schema (``schemas/<topic>.schema.json``),
against Amazon's own model for Amazon shapes (``amazon.purchase-orders``: vendorOrders
``Order``; ``amazon.shipment-confirmations``: vendorShipments ``ShipmentConfirmation``), and,
when both pass, by the very parser the worker runs on that topic (so a record this command
accepts is one the worker accepts). Each problem is reported with the record's number and a
JSON path. ``publish`` produces only when every record is valid, each with the key the
topic's contract names (README, "Topics").
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

import orjson
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from streams.adapters import amazon_models
from streams.config import Settings
from streams.package_data import schemas_dir

SCHEMAS_DIR = schemas_dir()  # package data: found in a wheel install too


class BadInput(ValueError):
    """The file or the topic cannot be checked at all (exit 2)."""


@dataclass(frozen=True)
class Problem:
    record: int  # 1-based position in the input
    path: str  # JSON path into the record, "$" = the record itself
    message: str

    def __str__(self) -> str:
        return f"record {self.record}: {self.path}: {self.message}"


Parse = Callable[[Any], None]  # the worker's own check; raises ValueError/ValidationError


@dataclass(frozen=True)
class Contract:
    topic: str  # default name; the schema file's name
    schema: bool = True  # schemas/<topic>.schema.json exists
    # (api, definition) of Amazon's model, or a function of the record giving it
    amazon: tuple[str, str] | Callable[[Any], tuple[str, str]] | None = None
    parse: Parse | None = None
    key: Callable[[Any], str | None] | None = None  # None: publishing is refused
    direction: str = "in"


def _sku_mapping(obj: Any) -> None:
    from streams.domain.mapping import SkuMapping

    SkuMapping.model_validate(obj)


def _dispatch(obj: Any) -> None:
    from streams.domain.dispatch import Dispatch

    Dispatch.model_validate(obj)


def _command(obj: Any) -> None:
    from streams.domain.inventory_commands import InventoryCommand

    # the worker parses the record's bytes (parse_command): JSON mode
    InventoryCommand.model_validate_json(orjson.dumps(obj))


def _order(obj: Any) -> None:
    from streams.domain.purchase_orders import Order

    if Order.model_validate(obj).orderDetails is None:
        raise ValueError("Order has no orderDetails (fetched with includeDetails=false)")


def _df_order(obj: Any) -> None:
    from streams.domain.df_orders import parse_df_order, redact

    parse_df_order(redact(obj))  # the worker redacts before it parses


def _invoice_model(obj: Any) -> tuple[str, str]:
    # a Direct Fulfillment invoice (DF Payments' InvoiceDetail) names itself invoiceNumber,
    # a retail one (Vendor Invoices' Invoice) id
    if isinstance(obj, dict) and "invoiceNumber" in obj:
        return ("df-payments", "InvoiceDetail")
    return ("vendorInvoices", "Invoice")


def _ct_delivery(obj: Any) -> None:
    from streams.domain.ctmessages import parse_delivery

    parse_delivery(obj)


def _field(name: str) -> Callable[[Any], str | None]:
    def key(obj: Any) -> str | None:
        v = obj.get(name) if isinstance(obj, dict) else None
        return v if isinstance(v, str) and v else None

    return key


def _ct_key(obj: Any) -> str | None:
    # any key is fine on ct.messages; the resource id keeps one resource's messages in order
    data = obj.get("data") if isinstance(obj, dict) and "specversion" in obj else obj
    res = data.get("resource") if isinstance(data, dict) else None
    rid = res.get("id") if isinstance(res, dict) else None
    return rid if isinstance(rid, str) and rid else None


CONTRACTS: dict[str, Contract] = {
    c.topic: c
    for c in (
        Contract("ct.messages", parse=_ct_delivery, key=_ct_key),
        Contract("master.sku-mappings", parse=_sku_mapping, key=_field("sku")),
        Contract(
            "amazon.purchase-orders",
            schema=False,
            amazon=("vendorOrders", "Order"),
            parse=_order,
            key=_field("purchaseOrderNumber"),
        ),
        Contract("wms.dispatches", parse=_dispatch, key=_field("purchaseOrderNumber")),
        Contract("ct.inventory-commands", parse=_command, key=_field("sku")),
        Contract("amazon.inventory-updates", direction="out"),
        Contract(
            "amazon.shipment-confirmations",
            amazon=("vendorShipments", "ShipmentConfirmation"),
            direction="out",
        ),
        Contract("amazon.df-orders", parse=_df_order, key=_field("purchaseOrderNumber")),
        Contract("amazon.invoices", amazon=_invoice_model, direction="out"),
        Contract("dlq", direction="out"),
    )
}


def resolve(topic: str, s: Settings) -> Contract:
    """The contract of ``topic``: a default name or the configured name of one."""
    configured = {
        s.topic_ct_messages: "ct.messages",
        s.topic_sku_mappings: "master.sku-mappings",
        s.topic_purchase_orders: "amazon.purchase-orders",
        s.topic_dispatches: "wms.dispatches",
        s.topic_inventory_commands: "ct.inventory-commands",
        s.topic_inventory_updates: "amazon.inventory-updates",
        s.topic_shipment_confirmations: "amazon.shipment-confirmations",
        s.topic_df_orders: "amazon.df-orders",
        s.topic_invoices: "amazon.invoices",
    }
    name = configured.get(topic, topic)
    if name not in CONTRACTS and topic.endswith(s.dlq_suffix):
        name = "dlq"
    if name not in CONTRACTS:
        known = ", ".join(sorted(configured))
        raise BadInput(f"no contract for topic {topic!r} (topics with one: {known}, <topic>.dlq)")
    return CONTRACTS[name]


@cache
def _schema(topic: str) -> Draft202012Validator:
    doc = orjson.loads((SCHEMAS_DIR / f"{topic}.schema.json").read_bytes())
    return Draft202012Validator(doc, format_checker=Draft202012Validator.FORMAT_CHECKER)


def json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _amazon_path(slash: str) -> str:
    # amazon_models.validate writes "items/0/netCost" (or "(root)")
    if slash == "(root)":
        return "$"
    return json_path(int(p) if p.isdigit() else p for p in slash.split("/"))


def check(c: Contract, obj: Any, n: int) -> list[Problem]:
    """Every problem of record number ``n`` (empty: the worker would take it)."""
    problems: list[Problem] = []
    if c.schema:
        errors = sorted(_schema(c.topic).iter_errors(obj), key=lambda e: list(e.absolute_path))
        problems += [Problem(n, json_path(e.absolute_path), e.message) for e in errors]
    if c.amazon is not None:
        api, definition = c.amazon(obj) if callable(c.amazon) else c.amazon
        for line in amazon_models.validate(api, definition, obj):
            where, _, msg = line.partition(": ")
            problems.append(Problem(n, _amazon_path(where), f"Amazon's model: {msg}"))
    if problems or c.parse is None:
        return problems
    try:
        c.parse(obj)
    except ValidationError as exc:
        for e in exc.errors():
            loc = [p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            problems.append(Problem(n, json_path(loc), e["msg"]))
    except ValueError as exc:  # the worker's BadRecord and other refusals
        problems.append(Problem(n, "$", str(exc)))
    return problems


def read_records(stream: IO[bytes]) -> list[Any]:
    """A JSON array, one JSON value, or JSON lines (blank lines skipped)."""
    data = stream.read()
    text = data.strip()
    if not text:
        return []
    try:
        whole = orjson.loads(text)
    except orjson.JSONDecodeError:
        whole = None
    else:
        return list(whole) if isinstance(whole, list) else [whole]
    out: list[Any] = []
    for i, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise BadInput(f"line {i}: not JSON: {exc}") from None
    return out


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{path}: no such file")
    return p.open("rb")


def _checked(topic: str, path: str, s: Settings) -> tuple[Contract, list[Any], list[Problem]]:
    c = resolve(topic, s)
    with _open(path) as f:
        records = read_records(f)
    problems = [p for n, obj in enumerate(records, 1) for p in check(c, obj, n)]
    return c, records, problems


def _report(problems: list[Problem], records: list[Any], out: IO[str]) -> None:
    for p in problems:
        print(p, file=out)
    bad = len({p.record for p in problems})
    n = len(records)
    print(f"{n} record{'' if n == 1 else 's'}: {n - bad} valid, {bad} invalid", file=out)


def validate_command(s: Settings, topic: str, path: str, out: IO[str] = sys.stdout) -> int:
    try:
        _, records, problems = _checked(topic, path, s)
    except BadInput as exc:
        print(f"streams validate: {exc}", file=sys.stderr)
        return 2
    _report(problems, records, out)
    return 1 if problems else 0


def keyed(c: Contract, records: list[Any]) -> Iterator[tuple[bytes, bytes]]:
    assert c.key is not None
    for obj in records:
        key = c.key(obj)
        assert key is not None  # a valid record has its key field
        yield key.encode(), orjson.dumps(obj)


async def _produce(s: Settings, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    from streams.adapters.kafka_admin import client_kwargs

    producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **client_kwargs(s))
    await producer.start()
    try:
        batch = [await producer.send(topic, value=v, key=k) for k, v in items]
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


def publish_command(s: Settings, topic: str, path: str, out: IO[str] = sys.stdout) -> int:
    try:
        c, records, problems = _checked(topic, path, s)
        if c.key is None or c.direction != "in":
            raise BadInput(f"{topic} is written by the worker; publish only to its input topics")
    except BadInput as exc:
        print(f"streams publish: {exc}", file=sys.stderr)
        return 2
    if problems:
        _report(problems, records, out)
        print(f"nothing published to {topic}", file=out)
        return 1
    items = list(keyed(c, records))
    asyncio.run(_produce(s, topic, items))
    print(f"published {len(items)} record{'' if len(items) == 1 else 's'} to {topic}", file=out)
    return 0

"""The ``streams`` command. Subcommands import their modules lazily so ``--help`` is fast."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from streams.config import ConfigError, Settings, load_settings

Handler = Callable[[Settings, argparse.Namespace], int]


def _config(s: Settings, a: argparse.Namespace) -> int:
    from streams.config import env_name

    derived = s.derived
    for name, value in s.masked().items():
        if name in derived:  # a comment line keeps the output usable as an env file
            print(f"# {env_name(name)} derived: {derived[name]}")
        print(f"{env_name(name)}={value}")
    return 0


def _local_kafka(s: Settings):  # type: ignore[no-untyped-def]
    from streams.localkafka import LocalKafka

    return LocalKafka(
        s.kafka_local_dir, s.kafka_local_port, s.kafka_local_controller_port, s.kafka_local_heap
    )


def _kafka(s: Settings, a: argparse.Namespace) -> int:
    from streams import localkafka

    k = _local_kafka(s)
    if a.action == "fetch":
        print(localkafka.fetch_jars(quiet=False))
    elif a.action == "up":
        pid = localkafka.up(k)
        print(f"kafka running on {k.bootstrap} (pid {pid}, logs {k.log_file})")
        if s.kafka_replication_factor > 1:
            print("one broker: export STREAMS_KAFKA_REPLICATION_FACTOR=1 to create topics here")
    elif a.action == "down":
        print("kafka stopped" if localkafka.down(k) else "kafka was not running")
    else:
        running = localkafka.read_pid(k)
        print(f"kafka running, pid {running}" if running else "kafka not running")
        return 0 if running else 1
    return 0


def _topics(s: Settings, a: argparse.Namespace) -> int:
    from streams.adapters.kafka_admin import check_topics, create_topics

    if a.action == "create":
        created, existing = asyncio.run(create_topics(s))
        for t in created:
            print(f"created  {t}")
        for t in existing:
            print(f"exists   {t}")
    problems = asyncio.run(check_topics(s))
    for p in problems:
        print(f"PROBLEM  {p.topic}: {p.problem}", file=sys.stderr)
    return 1 if problems else 0


def _doctor(s: Settings, a: argparse.Namespace) -> int:
    from streams.doctor import run_doctor

    return run_doctor(s)


def _dlq(s: Settings, a: argparse.Namespace) -> int:
    from streams.dlq import run_replay

    return run_replay(
        s, a.topic, since=a.since, filters=a.filter or [], dry_run=a.dry_run,
        from_beginning=a.all,
    )  # fmt: skip


def _worker(s: Settings, a: argparse.Namespace) -> int:
    from streams.worker import run_worker

    return run_worker(s)


def _demo(s: Settings, a: argparse.Namespace) -> int:
    from streams.demo.run import run_demo

    return run_demo(
        s, duration=a.duration, rate=a.rate, skus=a.skus, seed_only=a.seed_only, json_path=a.json
    )


def _sandbox(s: Settings, a: argparse.Namespace) -> int:
    if a.system == "amazon":
        from streams.sandbox.amazon.server import main as amazon_main

        return amazon_main(s, port=a.port, seed=a.seed)
    from streams.sandbox import ctmock

    if a.action == "down":
        return ctmock.down(s, port=a.port)
    return ctmock.up(s, port=a.port)


def _ops_view(s: Settings, a: argparse.Namespace) -> int:
    from streams.views import show_df, show_exceptions, show_invoice, show_po, show_sku

    if a.command == "invoice":
        return show_invoice(s, a.number, as_json=a.json)
    if a.command == "exceptions":
        return show_exceptions(s, owner=a.owner, as_json=a.json)
    if a.command == "sku":
        return show_sku(s, a.sku, as_json=a.json)
    if a.command == "df":
        return show_df(s, a.number, as_json=a.json)
    return show_po(s, a.number, as_json=a.json)


def _report(s: Settings, a: argparse.Namespace) -> int:
    from streams.report_run import reconciliation

    return reconciliation(s, month=a.month, out=a.out)


def _resync(s: Settings, a: argparse.Namespace) -> int:
    from streams.resync import run_resync

    return run_resync(s, apply=a.apply)


def _contract(s: Settings, a: argparse.Namespace) -> int:
    from streams.contracts import publish_command, validate_command

    if a.command == "validate":
        return validate_command(s, a.topic, a.file)
    return publish_command(s, a.topic, a.file)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="streams",
        description="Amazon Vendor Central <-> commercetools stream processor on Kafka.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("config", help="print the effective settings, secrets masked")
    sp.set_defaults(func=_config)

    sp = sub.add_parser("kafka", help="a local single-node Apache Kafka (no Docker)")
    sp.add_argument("action", choices=["up", "down", "status", "fetch"])
    sp.set_defaults(func=_kafka)

    sp = sub.add_parser("topics", help="create or check the topics of the contract")
    sp.add_argument("action", choices=["create", "check"])
    sp.set_defaults(func=_topics)

    sp = sub.add_parser("validate", help="check records against a topic's contract")
    sp.add_argument("topic", help="e.g. master.sku-mappings, wms.dispatches")
    sp.add_argument("file", nargs="?", default="-", help="JSON lines, a JSON array or one object")
    sp.set_defaults(func=_contract)
    sp = sub.add_parser("publish", help="validate records, then produce them (keyed)")
    sp.add_argument("topic")
    sp.add_argument("file", help="JSON lines, a JSON array or one object ('-': stdin)")
    sp.set_defaults(func=_contract)

    sp = sub.add_parser("worker", help="run the stream processor")
    sp.set_defaults(func=_worker)

    sp = sub.add_parser(
        "doctor", help="pre-flight check of Kafka, commercetools and Amazon (exit 1 on a failure)"
    )
    sp.set_defaults(func=_doctor)

    sp = sub.add_parser("dlq", help="dead letters: replay them to their source topic")
    dsub = sp.add_subparsers(dest="action", required=True)
    rp = dsub.add_parser(
        "replay",
        help="re-deliver dead letters (original key and partition) after the cause is fixed",
        description="Re-delivers each dead letter of TOPIC (a DLQ topic, or the input topic "
        "whose DLQ is meant) to its source topic. Starts where the last replay stopped "
        "(--all: at the beginning) and reads to the DLQ's current end.",
    )
    rp.add_argument("topic", metavar="TOPIC", help="e.g. ct.messages.dlq (or ct.messages)")
    rp.add_argument("--since", metavar="ISO", help="only dead letters failed at/after this time")
    rp.add_argument(
        "--filter", action="append", metavar="EXPR",
        help="KEY=VALUE, KEY~TEXT, KEY!=VALUE, KEY!~TEXT; KEY: error, reason, key, topic, "
        "partition, offset (of the source record); repeat to and them",
    )  # fmt: skip
    rp.add_argument("--dry-run", action="store_true", help="print what would go, send nothing")
    rp.add_argument("--all", action="store_true", help="from the DLQ's beginning")
    rp.set_defaults(func=_dlq)

    sp = sub.add_parser("exceptions", help="open owned exceptions (from the worker's API)")
    sp.add_argument("--owner", default=None, help="operations, finance, ecommerce, fulfilment")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_ops_view)
    sp = sub.add_parser("sku", help="one SKU: stock per channel, allocations, last published")
    sp.add_argument("sku")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_ops_view)
    sp = sub.add_parser("po", help="one purchase order: lines, decisions, ack, ASN, transactions")
    sp.add_argument("number")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_ops_view)

    sp = sub.add_parser("invoice", help="one vendor invoice: status, lines, transaction")
    sp.add_argument("number")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_ops_view)

    sp = sub.add_parser("df", help="one Direct Fulfillment order: lines, decisions, ack, shipments")
    sp.add_argument("number")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_ops_view)

    sp = sub.add_parser("report", help="reports for finance")
    rsub = sp.add_subparsers(dest="report", required=True)
    rp = rsub.add_parser("reconciliation", help="per PO: ordered/acknowledged/shipped, CSV")
    rp.add_argument("--month", required=True, help="YYYY-MM")
    rp.add_argument("--out", default=None, help="CSV path (default reconciliation-YYYY-MM.csv)")
    rp.set_defaults(func=_report)

    sp = sub.add_parser("resync", help="compare commercetools with the worker's state")
    ssub2 = sp.add_subparsers(dest="system", required=True)
    rs = ssub2.add_parser("commercetools", help="page through every inventory entry")
    rs.add_argument("--apply", action="store_true", help="re-deliver what differs")
    rs.set_defaults(func=_resync)

    sp = sub.add_parser("demo", help="generate traffic and show what flows, live")
    sp.add_argument("--duration", type=float, default=0, help="seconds; 0 runs until Ctrl-C")
    sp.add_argument("--rate", type=float, default=20.0, help="stock changes per second")
    sp.add_argument("--skus", type=int, default=40, help="catalogue size")
    sp.add_argument(
        "--seed-only", action="store_true", help="only write master data and stock, then exit"
    )
    sp.add_argument(
        "--json", type=Path, default=None, metavar="FILE", help="also write the summary as JSON"
    )
    sp.set_defaults(func=_demo)

    sp = sub.add_parser("sandbox", help="local stand-ins for Amazon SP-API and commercetools")
    ssub = sp.add_subparsers(dest="system", required=True)
    am = ssub.add_parser("amazon", help="serve the SP-API sandbox on 127.0.0.1")
    am.add_argument("--port", type=int, default=None)
    am.add_argument("--seed", type=int, default=1)
    am.set_defaults(func=_sandbox)
    ct = ssub.add_parser("commercetools", help="start/stop the commercetools emulator")
    ct.add_argument("action", choices=["up", "down"])
    ct.add_argument("--port", type=int, default=None)
    ct.set_defaults(func=_sandbox)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings: Settings | None = None
    try:
        settings = load_settings()
        code: int = args.func(settings, args)
    except ConfigError as exc:  # one line naming the STREAMS_* variable, no traceback
        print(f"streams: configuration error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except Exception as exc:
        line = _unreachable(exc, settings)
        if line is None:
            raise
        print(f"streams: configuration error: {line}", file=sys.stderr)
        return 2
    return code


def _unreachable(exc: Exception, s: Settings | None) -> str | None:
    """A Kafka that cannot be reached, said in one line (most often a wrong bootstrap)."""
    from aiokafka.errors import KafkaConnectionError

    if s is None or not isinstance(exc, KafkaConnectionError):
        return None
    return (
        f"STREAMS_KAFKA_BOOTSTRAP={s.kafka_bootstrap}: cannot reach Kafka "
        f"(security protocol {s.kafka_security_protocol}): {' '.join(str(exc).split())}"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

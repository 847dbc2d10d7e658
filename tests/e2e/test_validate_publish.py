"""``streams validate`` and ``streams publish`` as upstream producers run them (subprocesses)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.adapters import amazon_models
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from tests.support.kafka import read_all, unique_settings
from tests.support.worker import settings_env

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
MAPPING = orjson.loads((SCHEMAS / "examples/master.sku-mappings/sku-1001.json").read_bytes())


def streams(*args: str, stdin: bytes | None = None, s: Settings | None = None) -> Any:
    env = settings_env(s) if s is not None else None
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        input=stdin, capture_output=True, timeout=120, check=False, env=env,
    )  # fmt: skip


def lines(*docs: Any) -> bytes:
    return b"\n".join(orjson.dumps(d) for d in docs) + b"\n"


@pytest.mark.parametrize(
    "topic",
    sorted(p.name for p in (SCHEMAS / "examples").iterdir() if p.is_dir() and p.name != "dlq"),
)
def test_the_shipped_examples_are_valid_as_files_and_as_one_array_on_stdin(topic: str) -> None:
    files = sorted((SCHEMAS / "examples" / topic).glob("*.json"))
    for f in files:
        done = streams("validate", topic, str(f))
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.decode().strip() == "1 record: 1 valid, 0 invalid"
    array = b"[" + b",".join(f.read_bytes() for f in files) + b"]"
    done = streams("validate", topic, "-", stdin=array)
    assert done.returncode == 0, done.stdout
    n = len(files)
    assert f"{n} record{'s' if n > 1 else ''}: {n} valid, 0 invalid" in done.stdout.decode()


def test_each_error_has_its_record_number_and_json_path(tmp_path: Path) -> None:
    bad = {**MAPPING, "unitsPerCase": "12", "obsolete": "yes"}
    no_sku = {k: v for k, v in MAPPING.items() if k != "sku"}
    cost = {**MAPPING, "netCost": {"amount": 12.5, "currencyCode": "EUR"}}
    f = tmp_path / "mappings.jsonl"
    f.write_bytes(lines(MAPPING, bad, no_sku, cost))
    done = streams("validate", "master.sku-mappings", str(f))
    out = done.stdout.decode().splitlines()
    assert done.returncode == 1
    assert "record 2: $.obsolete: 'yes' is not of type 'boolean'" in out
    assert any(ln.startswith("record 2: $.unitsPerCase: '12' is not of type") for ln in out)
    assert "record 3: $: 'sku' is a required property" in out
    assert any(ln.startswith("record 4: $.netCost") for ln in out), out
    assert not any(ln.startswith("record 1:") for ln in out)
    assert out[-1] == "4 records: 1 valid, 3 invalid"


def test_the_workers_own_rules_count_beyond_the_schema() -> None:
    """A pallet naming one carton twice (once with the GS1 "(00)" prefix) passes the schema's
    uniqueItems but not the dispatch model: validate says so, as the worker would."""
    d = orjson.loads((SCHEMAS / "examples/wms.dispatches/truckload.json").read_bytes())
    carton = "006141411234567890"
    d["pallets"][0] = {"sscc": d["pallets"][0]["sscc"], "cartons": [carton, f"(00){carton}"]}
    done = streams("validate", "wms.dispatches", "-", stdin=orjson.dumps(d))
    assert done.returncode == 1
    assert "same carton twice" in done.stdout.decode()


def test_purchase_orders_are_checked_against_amazons_model() -> None:
    order = amazon_models.example("vendorOrders", "getPurchaseOrder")[0]["response"]["payload"]
    done = streams("validate", "amazon.purchase-orders", "-", stdin=orjson.dumps(order))
    assert done.returncode == 0, done.stdout
    order["orderDetails"]["items"][0]["orderedQuantity"]["amount"] = "ten"
    done = streams("validate", "amazon.purchase-orders", "-", stdin=orjson.dumps(order))
    out = done.stdout.decode()
    assert done.returncode == 1
    assert "record 1: $.orderDetails.items[0].orderedQuantity.amount: Amazon's model:" in out


def test_not_json_and_unknown_topics_are_usage_errors(tmp_path: Path) -> None:
    f = tmp_path / "x.jsonl"
    f.write_bytes(b'{"sku": "A"}\n{"sku": \n')
    done = streams("validate", "master.sku-mappings", str(f))
    assert done.returncode == 2 and b"line 2: not JSON" in done.stderr
    done = streams("validate", "no.such-topic", str(f))
    assert done.returncode == 2 and b"no contract for topic 'no.such-topic'" in done.stderr
    done = streams("validate", "master.sku-mappings", str(tmp_path / "missing.json"))
    assert done.returncode == 2 and b"no such file" in done.stderr


@pytest.mark.kafka
async def test_publish_produces_valid_records_with_the_contracts_key(
    kafka: str, tmp_path: Path
) -> None:
    s = unique_settings(kafka, tmp_path)
    await create_topics(s)
    second = {**MAPPING, "sku": "SKU-2002", "asin": "B000000002"}
    f = tmp_path / "m.json"
    f.write_bytes(orjson.dumps([MAPPING, second]))
    done = streams("publish", s.topic_sku_mappings, str(f), s=s)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.decode().strip() == f"published 2 records to {s.topic_sku_mappings}"
    got = await read_all(kafka, s.topic_sku_mappings)
    assert sorted((r.key, orjson.loads(r.value)) for r in got) == sorted(
        [(MAPPING["sku"].encode(), MAPPING), (b"SKU-2002", second)]
    )

    dispatch = (SCHEMAS / "examples/wms.dispatches/ltl.json").read_bytes()
    f2 = tmp_path / "d.json"
    f2.write_bytes(dispatch)
    done = streams("publish", s.topic_dispatches, str(f2), s=s)
    assert done.returncode == 0, done.stdout + done.stderr
    [rec] = await read_all(kafka, s.topic_dispatches)
    assert rec.key == orjson.loads(dispatch)["purchaseOrderNumber"].encode()


@pytest.mark.kafka
async def test_publish_sends_nothing_when_one_record_is_invalid(kafka: str, tmp_path: Path) -> None:
    s = unique_settings(kafka, tmp_path)
    await create_topics(s)
    f = tmp_path / "m.jsonl"
    f.write_bytes(lines(MAPPING, {**MAPPING, "sku": "SKU-9", "unitsPerCase": "12"}))
    done = streams("publish", s.topic_sku_mappings, str(f), s=s)
    out = done.stdout.decode()
    assert done.returncode == 1
    assert "record 2: $.unitsPerCase" in out and "nothing published" in out
    assert await read_all(kafka, s.topic_sku_mappings) == []
    done = streams("publish", s.topic_inventory_updates, str(f), s=s)
    assert done.returncode == 2 and b"written by the worker" in done.stderr

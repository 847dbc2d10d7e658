"""Contract tests of the local SP-API sandbox: raw HTTP on 127.0.0.1 against Amazon's models."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.adapters.amazon_models import example, validate
from streams.sandbox.amazon import (
    Faults,
    OperationFaults,
    SandboxConfig,
    SandboxControl,
    TransactionFaults,
    running_sandbox,
)
from streams.sandbox.amazon.generator import (
    CatalogueItem,
    OrderGenerator,
    acknowledgement_for,
    default_catalogue,
    generate_orders,
)

ORDERS = "/vendor/orders/v1/purchaseOrders"
ACKS = "/vendor/orders/v1/acknowledgements"
ASNS = "/vendor/shipping/v1/shipmentConfirmations"
TXS = "/vendor/transactions/v1/transactions/"
INVENTORY = "/vendor/directFulfillment/inventory/v1/warehouses/{}/items"
DF_TXS = "/vendor/directFulfillment/transactions/v1/transactions/"
DF_TXS_2021 = "/vendor/directFulfillment/transactions/2021-12-28/transactions/"
FIXED_NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


# --- generator -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), size=st.integers(1, 60), region=st.sampled_from(["na", "eu"]))
def test_generated_orders_validate_against_amazons_order_model(
    seed: int, size: int, region: str
) -> None:
    catalogue = default_catalogue(size, seed=seed)
    orders = generate_orders(
        8, seed=seed, catalogue=catalogue, selling_party="VENDORX", now=FIXED_NOW, region=region
    )
    for order in orders:
        assert validate("vendorOrders", "Order", order) == []
        assert re.fullmatch(r"[A-Z0-9]{8}", order["purchaseOrderNumber"])
        details = order["orderDetails"]
        assert details["sellingParty"] == {"partyId": "VENDORX"}
        start, end = details["shipWindow"].split("--")
        assert start < end
        for line in details["items"]:
            qty = line["orderedQuantity"]
            if qty["unitOfMeasure"] == "Eaches":
                assert qty["unitSize"] == 1
            else:
                assert qty["unitSize"] in (6, 12, 24)
            assert isinstance(line["netCost"]["amount"], str)
        # a complete acknowledgement of the order passes the model too
        ack = acknowledgement_for(order, when=FIXED_NOW)
        assert validate("vendorOrders", "OrderAcknowledgement", ack) == []
    assert len({o["purchaseOrderNumber"] for o in orders}) == len(orders)


def test_generator_is_deterministic_and_uses_the_given_catalogue() -> None:
    catalogue = [
        ("SKU-A", "B000000001", "4000000000017", 6),
        ("SKU-B", "B000000002", "4000000000024", 12),
        ("SKU-C", "B000000003", "4000000000031", 24),
        ("SKU-D", "B000000004", "4000000000048", 1),
    ]
    a = generate_orders(50, seed=11, catalogue=catalogue, now=FIXED_NOW)
    assert a == generate_orders(50, seed=11, catalogue=catalogue, now=FIXED_NOW)
    assert a != generate_orders(50, seed=12, catalogue=catalogue, now=FIXED_NOW)
    by_vpi = {c[2]: CatalogueItem(*c) for c in catalogue}
    lines = [line for o in a for line in o["orderDetails"]["items"]]
    assert {line["vendorProductIdentifier"] for line in lines} <= set(by_vpi)
    cases = [line for line in lines if line["orderedQuantity"]["unitOfMeasure"] == "Cases"]
    assert cases
    for line in cases:
        assert line["orderedQuantity"]["unitSize"] == by_vpi[line["vendorProductIdentifier"]][3]
    assert {line["isBackOrderAllowed"] for line in lines} == {True, False}
    assert {o["purchaseOrderState"] for o in a} >= {"New", "Acknowledged"}
    gen = OrderGenerator(seed=1, catalogue=catalogue, now=FIXED_NOW, taken=["X"])
    assert gen.order()["purchaseOrderNumber"] != "X"


# --- a running sandbox -----------------------------------------------------------------


@dataclass
class Sandbox:
    url: str
    http: aiohttp.ClientSession
    control: SandboxControl
    token: str

    async def call(
        self, method: str, path: str, *, token: str | None = None, **kw: Any
    ) -> tuple[int, dict[str, Any], Any]:
        headers = {"x-amz-access-token": self.token if token is None else token}
        headers.update(kw.pop("headers", {}))
        async with self.http.request(method, self.url + path, headers=headers, **kw) as resp:
            return resp.status, dict(resp.headers), await resp.json(content_type=None)


async def _token(http: aiohttp.ClientSession, url: str, **form: str) -> tuple[int, Any]:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": "Atzr|local-refresh-token",
        "client_id": "amzn1.application-oa2-client.local",
        "client_secret": "local-secret",
        **form,
    }
    async with http.post(url + "/auth/o2/token", data=data) as resp:
        return resp.status, await resp.json()


@asynccontextmanager
async def open_sandbox(**overrides: Any) -> AsyncIterator[Sandbox]:
    config = SandboxConfig(**{"seed": 5, "transaction_processing_s": 0.3, **overrides})
    async with running_sandbox(config) as url, aiohttp.ClientSession() as http:
        status, body = await _token(http, url)
        assert status == 200
        yield Sandbox(url, http, SandboxControl(url, http), body["access_token"])


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with open_sandbox() as sb:
        yield sb


async def test_lwa_token_endpoint_and_its_errors(sandbox: Sandbox) -> None:
    status, body = await _token(sandbox.http, sandbox.url)
    assert status == 200
    assert body["access_token"].startswith("Atza|") and len(body["access_token"]) >= 350
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["refresh_token"] == "Atzr|local-refresh-token"

    status, body = await _token(sandbox.http, sandbox.url, client_secret="wrong")
    assert (status, body["error"]) == (401, "invalid_client")
    status, body = await _token(sandbox.http, sandbox.url, refresh_token="Atzr|wrong")
    assert (status, body["error"]) == (400, "invalid_grant") and body["error_description"]
    status, body = await _token(sandbox.http, sandbox.url, grant_type="client_credentials")
    assert (status, body["error"]) == (400, "unsupported_grant_type")

    recorded = await sandbox.control.received("lwaToken")
    assert [e["status"] for e in recorded] == [200, 200, 401, 400, 400]
    text = repr(recorded)
    assert "local-secret" not in text and "Atzr|local-refresh-token" not in text


async def test_api_needs_a_live_access_token(sandbox: Sandbox) -> None:
    status, headers, body = await sandbox.call("GET", ORDERS, token="")
    assert status == 403 and body["errors"][0]["code"] == "Unauthorized"
    status, _, body = await sandbox.call("GET", ORDERS, token="Atza|forged")
    assert status == 403 and "invalid" in body["errors"][0]["details"]

    status, headers, _ = await sandbox.call("GET", ORDERS)
    assert status == 200
    assert headers["x-amzn-RateLimit-Limit"] == "10.0" and headers["x-amzn-RequestId"]

    assert await sandbox.control.expire_tokens() >= 1
    status, headers, body = await sandbox.call("GET", ORDERS)
    assert status == 403
    assert body["errors"][0]["message"].startswith("The access token you provided has expired")
    assert headers["x-amzn-RequestId"] and headers["x-amzn-RateLimit-Limit"]


async def test_get_purchase_orders_filters_paginates_and_enforces_the_window() -> None:
    # 14 calls back to back: more than the default burst of 10 (rate limits have their own test)
    async with open_sandbox(order_count=230, burst=50) as sandbox:
        now = datetime.now(UTC)
        after = (now - timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
        numbers: list[str] = []
        params = {"createdAfter": after, "limit": "100", "sortOrder": "DESC"}
        pages = 0
        while True:
            status, _, body = await sandbox.call("GET", ORDERS, params=params)
            assert status == 200, body
            assert validate("vendorOrders", "GetPurchaseOrdersResponse", body) == []
            numbers += [o["purchaseOrderNumber"] for o in body["payload"]["orders"]]
            pages += 1
            token = body["payload"].get("pagination", {}).get("nextToken")
            if not token:
                break
            params = {"nextToken": token, "limit": "100"}
        # 230 generated; Amazon's example orders are from 2019, outside the window
        assert pages == 3 and len(numbers) == len(set(numbers)) == 230

        query = {"purchaseOrderState": "New", "includeDetails": "false"}
        status, _, body = await sandbox.call("GET", ORDERS, params=query)
        assert status == 200 and body["payload"]["orders"]
        for o in body["payload"]["orders"]:
            assert o == {
                "purchaseOrderNumber": o["purchaseOrderNumber"],
                "purchaseOrderState": "New",
            }

        eight_days = {
            "createdAfter": "2025-01-01T00:00:00Z",
            "createdBefore": "2025-01-09T00:00:01Z",
        }
        status, _, body = await sandbox.call("GET", ORDERS, params=eight_days)
        assert status == 400 and body["errors"][0]["code"] == "InvalidInput"
        assert "7 days" in body["errors"][0]["message"]
        open_ended = {"changedAfter": (now - timedelta(days=30)).isoformat()}  # ends now
        status, _, body = await sandbox.call("GET", ORDERS, params=open_ended)
        assert status == 400 and "7 days" in body["errors"][0]["message"]
        # Amazon's own malformed-date example
        bad = {"createdAfter": "2019-08-20T14:00:00", "createdBefore": "2019-09-2100:00:00"}
        status, _, body = await sandbox.call("GET", ORDERS, params=bad)
        assert status == 400 and body["errors"][0]["code"] == "InvalidRequest"
        for limit in ("0", "101", "x"):
            status, _, _ = await sandbox.call("GET", ORDERS, params={"limit": limit})
            assert status == 400
        status, _, _ = await sandbox.call("GET", ORDERS, params={"nextToken": "garbage"})
        assert status == 400


async def test_amazons_example_orders_are_served_and_unknown_is_404(sandbox: Sandbox) -> None:
    status, _, body = await sandbox.call("GET", ORDERS + "/4Z32PABC")
    assert status == 200 and body["payload"]["purchaseOrderState"] == "Closed"
    assert validate("vendorOrders", "GetPurchaseOrderResponse", body) == []
    window = {"createdAfter": "2019-08-20T00:00:00Z", "createdBefore": "2019-08-21T00:00:00Z"}
    status, _, body = await sandbox.call("GET", ORDERS, params=window)
    assert [o["purchaseOrderNumber"] for o in body["payload"]["orders"]] == ["2JK3S9VC"]
    status, _, body = await sandbox.call("GET", ORDERS + "/NOSUCHPO")
    assert status == 404 and body["errors"][0]["code"] == "NotFound"


def _example_bodies(api: str, operation: str, status: str) -> list[Any]:
    out = []
    for ex in example(api, operation, status):
        body = ex["request"]["parameters"].get("body") or {}
        if "value" in body:
            out.append(body["value"])
    return out


async def test_amazons_example_submissions_are_accepted(sandbox: Sandbox) -> None:
    cases = [
        (ACKS, _example_bodies("vendorOrders", "submitAcknowledgement", "202")),
        (ASNS, _example_bodies("vendorShipments", "SubmitShipmentConfirmations", "202")),
        (
            INVENTORY.format("WH1"),
            _example_bodies("vendorDirectFulfillmentInventory", "submitInventoryUpdate", "202"),
        ),
    ]
    for path, bodies in cases:
        assert bodies
        for body in bodies:
            status, _, resp = await sandbox.call("POST", path, json=body)
            assert status == 202, resp
            assert re.fullmatch(r"\d{14}-[0-9a-f-]{36}", resp["payload"]["transactionId"])
    # and Amazon's 400 example is rejected
    [bad] = _example_bodies("vendorOrders", "submitAcknowledgement", "400")
    status, _, resp = await sandbox.call("POST", ACKS, json=bad)
    assert status == 400 and {e["code"] for e in resp["errors"]} == {"InvalidInput"}


async def test_acknowledgement_rules_beyond_the_schema(sandbox: Sandbox) -> None:
    [order] = generate_orders(1, seed=3, now=FIXED_NOW)
    ack = acknowledgement_for(order)
    del ack["items"][0]["netCost"]
    status, _, resp = await sandbox.call("POST", ACKS, json={"acknowledgements": [ack]})
    assert status == 400
    assert resp["errors"][0]["details"] == "acknowledgements/0/items/0/netCost"
    assert "netCost is a required field" in resp["errors"][0]["message"]

    ack = acknowledgement_for(order)
    ack["items"][0]["netCost"] = {"currencyCode": "USD", "amount": "0.00"}
    status, _, resp = await sandbox.call("POST", ACKS, json={"acknowledgements": [ack]})
    assert status == 400 and "zero or negative" in resp["errors"][0]["message"]

    empty: list[dict[str, Any]] = [{"acknowledgements": []}, {}]
    for body in empty:
        status, _, resp = await sandbox.call("POST", ACKS, json=body)
        assert status == 400
    json_type = {"content-type": "application/json"}
    status, _, resp = await sandbox.call("POST", ACKS, data=b"{nope", headers=json_type)
    assert status == 400 and "not valid JSON" in resp["errors"][0]["message"]

    recorded = await sandbox.control.received("submitAcknowledgement")
    assert [e["status"] for e in recorded] == [400] * 5
    assert recorded[-1]["body"] == {"_raw": "{nope"}  # rejected bodies are kept too


async def test_transactions_process_then_succeed_or_fail(sandbox: Sandbox) -> None:
    orders = await sandbox.control.add_orders(count=2, seed=9)
    good, doomed = (o["purchaseOrderNumber"] for o in orders)
    await sandbox.control.set_faults({"transactionFailures": {"purchaseOrders": [doomed]}})

    tids = {}
    for order in orders:
        body = {"acknowledgements": [acknowledgement_for(order)]}
        status, _, resp = await sandbox.call("POST", ACKS, json=body)
        assert status == 202
        tids[order["purchaseOrderNumber"]] = resp["payload"]["transactionId"]

    status, _, resp = await sandbox.call("GET", TXS + tids[good])
    assert resp["payload"]["transactionStatus"]["status"] == "Processing"
    await asyncio.sleep(0.35)
    for number, expected in ((good, "Success"), (doomed, "Failure")):
        status, _, resp = await sandbox.call("GET", TXS + tids[number])
        assert status == 200
        assert validate("vendorTransactionStatus", "GetTransactionResponse", resp) == []
        assert resp["payload"]["transactionStatus"]["status"] == expected
    assert resp["payload"]["transactionStatus"]["errors"][0]["code"] == "INVALID_ORDER_ID"

    states = await sandbox.control.order_numbers()
    assert states[good] == "Acknowledged"  # an accepted acknowledgement moves the PO on
    status, _, _ = await sandbox.call("GET", TXS + "unknown")
    assert status == 404
    received = await sandbox.control.received("submitAcknowledgement")
    assert [e["transactionId"] for e in received] == [tids[good], tids[doomed]]
    assert received[0]["body"]["acknowledgements"][0]["purchaseOrderNumber"] == good


async def test_several_acknowledgements_in_one_request(sandbox: Sandbox) -> None:
    """The body is a list: every acknowledgement in it is validated, one transaction covers
    them all, and it fails as a whole when Amazon cannot process one of them."""
    orders = [o for o in generate_orders(8, seed=11, now=FIXED_NOW) if o["orderDetails"]["items"]]
    for o in orders:
        o["purchaseOrderState"] = "New"
    await sandbox.control.add_orders(orders)
    numbers = [o["purchaseOrderNumber"] for o in orders]
    acks = [acknowledgement_for(o) for o in orders]

    body = {"acknowledgements": acks[:3]}
    assert validate("vendorOrders", "SubmitAcknowledgementRequest", body) == []
    status, _, resp = await sandbox.call("POST", ACKS, json=body)
    assert status == 202
    together = resp["payload"]["transactionId"]

    # one bad acknowledgement refuses the whole request, and says which one it is
    bad = acknowledgement_for(orders[4])
    del bad["items"][0]["netCost"]
    status, _, resp = await sandbox.call("POST", ACKS, json={"acknowledgements": [acks[3], bad]})
    assert status == 400
    assert resp["errors"][0]["details"] == "acknowledgements/1/items/0/netCost"
    bad = acknowledgement_for(orders[4])
    bad["items"][0]["itemAcknowledgements"][0]["acknowledgementCode"] = "Maybe"
    status, _, resp = await sandbox.call("POST", ACKS, json={"acknowledgements": [acks[3], bad]})
    assert status == 400
    assert resp["errors"][0]["details"].startswith("acknowledgements/1/items/0/")

    # a transaction fails as a whole when one of its POs cannot be processed
    doomed = numbers[4]
    await sandbox.control.set_faults({"transactionFailures": {"purchaseOrders": [doomed]}})
    status, _, resp = await sandbox.call("POST", ACKS, json={"acknowledgements": acks[3:5]})
    assert status == 202
    failing = resp["payload"]["transactionId"]

    await asyncio.sleep(0.35)  # the sandbox's processing time (0.3 s)
    status, _, resp = await sandbox.call("GET", TXS + together)
    assert resp["payload"]["transactionStatus"]["status"] == "Success"
    status, _, resp = await sandbox.call("GET", TXS + failing)
    tx = resp["payload"]["transactionStatus"]
    assert tx["status"] == "Failure" and tx["errors"][0]["details"] == doomed

    states = await sandbox.control.order_numbers()
    assert [states[n] for n in numbers[:5]] == ["Acknowledged"] * 3 + ["New"] * 2
    received = await sandbox.control.received("submitAcknowledgement")
    assert [e["status"] for e in received] == [202, 400, 400, 202]
    assert received[0]["body"] == body


async def test_token_buckets_answer_429_in_amazons_shape(sandbox: Sandbox) -> None:
    results = await asyncio.gather(*(sandbox.call("GET", ORDERS + "/4Z32PABC") for _ in range(25)))
    statuses = [r[0] for r in results]
    # burst 10 at 10/s: 25 requests at once can't all pass, however they are scheduled
    assert statuses.count(200) >= 10 and statuses.count(429) >= 5
    _, headers, body = next(r for r in results if r[0] == 429)
    message = "You exceeded your quota for the requested resource."
    assert body == {"errors": [{"code": "QuotaExceeded", "message": message, "details": ""}]}
    assert headers["x-amzn-RateLimit-Limit"] == "10.0"

    # the retail getTransaction has burst 20
    [body] = _example_bodies("vendorOrders", "submitAcknowledgement", "202")[:1]
    _, _, tx = await sandbox.call("POST", ACKS, json=body)
    tid = tx["payload"]["transactionId"]
    results = await asyncio.gather(*(sandbox.call("GET", TXS + tid) for _ in range(20)))
    assert [r[0] for r in results] == [200] * 20

    # the DF transaction status API has a plan of its own: burst 10
    feed = {"sellingParty": {"partyId": "VENDOR1"}, "isFullUpdate": True, "items": []}
    _, _, tx = await sandbox.call("POST", INVENTORY.format("WH1"), json={"inventory": feed})
    tid = tx["payload"]["transactionId"]
    results = await asyncio.gather(*(sandbox.call("GET", DF_TXS + tid) for _ in range(20)))
    statuses = [r[0] for r in results]
    assert statuses.count(200) >= 10 and statuses.count(429) >= 5


async def test_each_transaction_is_answered_only_on_its_own_api(sandbox: Sandbox) -> None:
    """Direct Fulfillment submissions on the DF Transaction Status API (v1 and 2021-12-28,
    in their models' shapes), acknowledgements and ASNs on the retail one; else 404."""
    feed = {"sellingParty": {"partyId": "VENDOR1"}, "isFullUpdate": True, "items": []}
    _, _, tx = await sandbox.call("POST", INVENTORY.format("WH1"), json={"inventory": feed})
    df_tid = tx["payload"]["transactionId"]
    [ack] = _example_bodies("vendorOrders", "submitAcknowledgement", "202")[:1]
    [asn] = _example_bodies("vendorShipments", "SubmitShipmentConfirmations", "202")[:1]
    retail = [
        (await sandbox.call("POST", path, json=body))[2]["payload"]["transactionId"]
        for path, body in ((ACKS, ack), (ASNS, asn))
    ]

    status, _, v1 = await sandbox.call("GET", DF_TXS + df_tid)
    assert status == 200
    assert v1 == {
        "payload": {"transactionStatus": {"transactionId": df_tid, "status": "Processing"}}
    }
    status, headers, v2 = await sandbox.call("GET", DF_TXS_2021 + df_tid)
    assert status == 200 and headers["x-amzn-RateLimit-Limit"] == "10.0"
    assert v2 == {"transactionStatus": {"transactionId": df_tid, "status": "Processing"}}
    await asyncio.sleep(0.35)
    status, _, v2 = await sandbox.call("GET", DF_TXS_2021 + df_tid)
    assert v2["transactionStatus"]["status"] == "Success"

    status, _, body = await sandbox.call("GET", TXS + df_tid)  # retail: not one of its own
    assert status == 404 and body["errors"][0]["code"] == "NotFound"
    for tid in retail:
        assert (await sandbox.call("GET", TXS + tid))[0] == 200
        for path in (DF_TXS, DF_TXS_2021):
            status, _, body = await sandbox.call("GET", path + tid)
            assert status == 404 and body["errors"][0]["code"] == "NotFound"
    got = await sandbox.control.received("getTransactionStatus")
    assert [e["status"] for e in got] == [200, 404, 404]


async def test_faults_can_be_set_at_runtime(sandbox: Sandbox) -> None:
    plan = await sandbox.control.set_faults(
        {
            "operations": {
                "getPurchaseOrder": {"failNext": 2, "errorStatus": 500},
                "*": {"throttleNext": 1},
            }
        }
    )
    assert plan["operations"]["getPurchaseOrder"]["failNext"] == 2
    statuses = [(await sandbox.call("GET", ORDERS + "/4Z32PABC"))[0] for _ in range(4)]
    assert statuses == [429, 500, 500, 200]

    await sandbox.control.set_faults(
        {"clear": True, "operations": {"getPurchaseOrders": {"errorRate": 1.0, "errorStatus": 503}}}
    )
    status, _, body = await sandbox.call("GET", ORDERS)
    assert status == 503 and body["errors"][0]["code"] == "ServiceUnavailable"

    await sandbox.control.set_faults(
        {"clear": True, "operations": {"getPurchaseOrders": {"throttleForS": 30}}}
    )
    assert (await sandbox.call("GET", ORDERS))[0] == 429

    with pytest.raises(RuntimeError, match="HTTP 400"):
        await sandbox.control.set_faults({"operations": {"x": {"bogus": 1}}})
    await sandbox.control.reset()
    assert (await sandbox.call("GET", ORDERS))[0] == 200
    assert await sandbox.control.received("getPurchaseOrder") == []


async def test_faults_can_be_configured_up_front() -> None:
    faults = Faults(
        operations={"*": OperationFaults(fail_next=1, error_status=500, latency_s=0.01)},
        transactions=TransactionFaults(fail_next=1, code="Boom", message="planned failure"),
    )
    async with open_sandbox(faults=faults, transaction_processing_s=0.0) as sandbox:
        assert (await sandbox.call("GET", ORDERS + "/4Z32PABC"))[0] == 500
        assert (await sandbox.call("GET", ORDERS + "/4Z32PABC"))[0] == 200
        [body] = _example_bodies("vendorOrders", "submitAcknowledgement", "202")[:1]
        tids = [
            (await sandbox.call("POST", ACKS, json=body))[2]["payload"]["transactionId"]
            for _ in range(2)
        ]
        results = [
            (await sandbox.call("GET", TXS + t))[2]["payload"]["transactionStatus"] for t in tids
        ]
        assert [r["status"] for r in results] == ["Failure", "Success"]
        assert results[0]["errors"] == [{"code": "Boom", "message": "planned failure"}]
    assert faults.operations["*"].fail_next == 1  # the config object is not consumed


async def test_orders_can_be_added_from_outside(sandbox: Sandbox) -> None:
    [order] = generate_orders(1, seed=99, now=FIXED_NOW, selling_party="VENDOR1")
    order["purchaseOrderNumber"] = "TESTPO01"
    added = await sandbox.control.add_orders([order])
    assert [o["purchaseOrderNumber"] for o in added] == ["TESTPO01"]
    status, _, body = await sandbox.call("GET", ORDERS + "/TESTPO01")
    assert status == 200 and body["payload"] == order

    catalogue = [
        {"sku": "S1", "asin": "B0TEST0001", "vendorProductIdentifier": "V1", "unitsPerCase": 12}
    ]
    generated = await sandbox.control.add_orders(count=3, seed=1, catalogue=catalogue)
    assert len(generated) == 3
    vpis = {
        line["vendorProductIdentifier"] for o in generated for line in o["orderDetails"]["items"]
    }
    assert vpis == {"V1"}

    with pytest.raises(RuntimeError, match="HTTP 400"):
        await sandbox.control.add_orders([{"purchaseOrderNumber": "NOSTATE1"}])


async def test_inventory_and_asn_bodies_are_validated(sandbox: Sandbox) -> None:
    item = {"availableQuantity": {"amount": 1, "unitOfMeasure": "Each"}}  # no identifier
    feed = {"sellingParty": {"partyId": "VENDOR1"}, "isFullUpdate": False, "items": [item]}
    status, _, body = await sandbox.call("POST", INVENTORY.format("WH1"), json={"inventory": feed})
    assert status == 400 and "either buyerProductIdentifier" in body["errors"][0]["message"]

    asn = {"shipmentConfirmations": [{"shipmentIdentifier": "X"}]}
    status, _, body = await sandbox.call("POST", ASNS, json=asn)
    assert status == 400
    assert any("'sellingParty' is a required property" in e["message"] for e in body["errors"])

    text = {"content-type": "text/plain"}
    status, _, body = await sandbox.call("POST", ASNS, data=b"x", headers=text)
    assert status == 415


async def test_main_serves_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "STREAMS_SANDBOX_PORT": "0", "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "streams", "sandbox", "amazon", "--seed", "3"),
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url, line
        async with aiohttp.ClientSession() as http:
            numbers = await SandboxControl(url.group(0), http).order_numbers()
        assert len(numbers) > 100
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

"""Direct Fulfillment orders, shipping and Tokens: the sandbox's operations and the
clients, over real HTTP on 127.0.0.1 (no mocks of aiohttp).

Tests marked with the ``amazon_models_dir`` fixture validate against Amazon's own models
and are skipped without ``STREAMS_AMAZON_MODELS_DIR``; the rest run either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from streams.adapters import amazon_models
from streams.adapters.spapi import (
    CountingHooks,
    SpApiClient,
    SpApiError,
    TransactionFailed,
    df_shipping,
)
from streams.adapters.spapi.df_orders import orders_query
from streams.adapters.spapi.validation import InvalidBody
from streams.sandbox.amazon import SandboxConfig, SandboxControl, running_sandbox
from tests.contract.test_spapi_client import FAST, PLANTED_REFRESH, PLANTED_SECRET, make_settings

DF_ORDERS = "/vendor/directFulfillment/orders/2021-12-28/purchaseOrders"
DF_ACKS = "/vendor/directFulfillment/orders/2021-12-28/acknowledgements"
DF_SHIPPING = "/vendor/directFulfillment/shipping/2021-12-28"
RDT = "/tokens/2021-03-01/restrictedDataToken"


@dataclass
class Rig:
    client: SpApiClient
    control: SandboxControl
    hooks: CountingHooks
    url: str
    http: aiohttp.ClientSession

    async def lwa(self) -> str:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": PLANTED_REFRESH,
            "client_id": "amzn1.application-oa2-client.test",
            "client_secret": PLANTED_SECRET,
        }
        async with self.http.post(self.url + "/auth/o2/token", data=form) as resp:
            return str((await resp.json())["access_token"])

    async def call(
        self, method: str, path: str, token: str, body: Any = None, **params: str
    ) -> tuple[int, Any]:
        headers = {"x-amz-access-token": token}
        data = None
        if body is not None:
            data, headers["content-type"] = orjson.dumps(body), "application/json"
        async with self.http.request(
            method, self.url + path, params=params, data=data, headers=headers
        ) as resp:
            return resp.status, orjson.loads(await resp.read() or b"{}")


@asynccontextmanager
async def rig(**sandbox: Any) -> AsyncIterator[Rig]:
    config = SandboxConfig(
        **{
            "seed": 5,
            "order_count": 0,
            "df_order_count": 0,
            "transaction_processing_s": 0.2,
            "client_id": "amzn1.application-oa2-client.test",
            "client_secret": PLANTED_SECRET,
            "refresh_token": PLANTED_REFRESH,
            **sandbox,
        }
    )
    hooks = CountingHooks()
    async with running_sandbox(config) as url, aiohttp.ClientSession() as http:
        async with SpApiClient(make_settings(url), hooks=hooks, retry=FAST) as client:
            yield Rig(client, SandboxControl(url, http), hooks, url, http)


def window(hours: float = 24) -> dict[str, datetime]:
    now = datetime.now(UTC)
    return {"created_after": now - timedelta(hours=hours), "created_before": now}


def ack_body(order: dict[str, Any], code: str = "00") -> dict[str, Any]:
    d = order["orderDetails"]
    return {
        "orderAcknowledgements": [
            {
                "purchaseOrderNumber": order["purchaseOrderNumber"],
                "vendorOrderNumber": "V-" + order["purchaseOrderNumber"],
                "acknowledgementDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "acknowledgementStatus": {"code": code, "description": "Shipping 100 percent"},
                "sellingParty": d["sellingParty"],
                "shipFromParty": d["shipFromParty"],
                "itemAcknowledgements": [
                    {
                        "itemSequenceNumber": i["itemSequenceNumber"],
                        "buyerProductIdentifier": i["buyerProductIdentifier"],
                        "acknowledgedQuantity": {
                            "amount": i["orderedQuantity"]["amount"],
                            "unitOfMeasure": "Each",
                        },
                    }
                    for i in d["items"]
                ],
            }
        ]
    }


def confirmation_body(order: dict[str, Any]) -> dict[str, Any]:
    d = order["orderDetails"]
    return {
        "shipmentConfirmations": [
            {
                "purchaseOrderNumber": order["purchaseOrderNumber"],
                "shipmentDetails": {
                    "shippedDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "shipmentStatus": "SHIPPED",
                },
                "sellingParty": d["sellingParty"],
                "shipFromParty": d["shipFromParty"],
                "items": [
                    {
                        "itemSequenceNumber": int(i["itemSequenceNumber"]),
                        "buyerProductIdentifier": i["buyerProductIdentifier"],
                        "shippedQuantity": {
                            "amount": i["orderedQuantity"]["amount"],
                            "unitOfMeasure": "Each",
                        },
                    }
                    for i in d["items"]
                ],
            }
        ]
    }


def status_update_body(order: dict[str, Any]) -> dict[str, Any]:
    d = order["orderDetails"]
    return {
        "shipmentStatusUpdates": [
            {
                "purchaseOrderNumber": order["purchaseOrderNumber"],
                "sellingParty": d["sellingParty"],
                "shipFromParty": d["shipFromParty"],
                "statusUpdateDetails": {
                    "trackingNumber": "1Z999AA10123456784",
                    "statusCode": "D1",
                    "reasonCode": "NS",
                    "statusDateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "statusLocationAddress": {
                        "name": "Depot",
                        "addressLine1": "1 Depot Road",
                        "stateOrRegion": "WA",
                        "countryCode": "US",
                    },
                },
            }
        ]
    }


# --- Restricted Data Tokens ---------------------------------------------------------------


async def test_df_order_reads_need_a_restricted_data_token_not_the_lwa_token() -> None:
    async with rig() as r:
        [order] = await r.control.add_df_orders(count=1)
        lwa = await r.lwa()
        number = order["purchaseOrderNumber"]
        status, body = await r.call("GET", f"{DF_ORDERS}/{number}", lwa)
        assert status == 403 and body["errors"][0]["code"] == "Unauthorized"
        assert "Restricted Data Token" in body["errors"][0]["details"]

        resources = [{"method": "GET", "path": DF_ORDERS + "/{purchaseOrderNumber}"}]
        status, rdt = await r.call("POST", RDT, lwa, {"restrictedResources": resources})
        assert status == 200 and rdt["restrictedDataToken"].startswith("Atz.sprdt|")
        assert rdt["expiresIn"] == 3600
        status, got = await r.call("GET", f"{DF_ORDERS}/{number}", rdt["restrictedDataToken"])
        assert status == 200 and got == order  # 2021-12-28: no payload wrapper
        # the RDT opens what it names only: getOrders was not asked for
        since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status, body = await r.call("GET", DF_ORDERS, rdt["restrictedDataToken"],
                                    createdAfter=since, createdBefore=since)  # fmt: skip
        assert status == 403
        # and it is no LWA token: other operations refuse it
        status, _ = await r.call("POST", DF_ACKS, rdt["restrictedDataToken"], ack_body(order))
        assert status == 403


async def test_an_rdt_for_a_path_that_is_not_restricted_is_refused() -> None:
    async with rig() as r:
        lwa = await r.lwa()
        for resource in ({"method": "GET", "path": "/vendor/orders/v1/purchaseOrders"},
                         {"method": "POST", "path": DF_ORDERS}):  # fmt: skip
            status, body = await r.call("POST", RDT, lwa, {"restrictedResources": [resource]})
            assert status == 400 and body["errors"][0]["code"] == "InvalidInput"
        status, body = await r.call("POST", RDT, lwa, {"restrictedResources": []})
        assert status == 400


async def test_amazons_tokens_sandbox_examples_are_answered_as_the_model_has_them(
    amazon_models_dir: Path,
) -> None:
    async with rig() as r:
        lwa = await r.lwa()
        for status_code in ("200", "400"):
            for ex in amazon_models.example("tokens", "createRestrictedDataToken", status_code):
                body = ex["request"]["parameters"]["body"]["value"]
                status, got = await r.call("POST", RDT, lwa, body)
                assert (status, got) == (int(status_code), ex["response"])


async def test_the_client_caches_its_rdt_renews_it_when_refused_and_never_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with rig() as r:
        orders = await r.control.add_df_orders(count=3)
        with caplog.at_level(logging.DEBUG):
            for o in orders:
                assert await r.client.df_get_order(o["purchaseOrderNumber"]) == o
            got = [o async for o in r.client.df_get_orders(**window())]
            assert sorted(o["purchaseOrderNumber"] for o in got) == sorted(
                o["purchaseOrderNumber"] for o in orders
            )
            assert await r.control.statuses("createRestrictedDataToken") == [200]  # one RDT
            await r.control.expire_tokens()
            await r.client.df_get_order(orders[0]["purchaseOrderNumber"])
        # the LWA token expired too: refused once, renewed, then the new RDT
        assert await r.control.statuses("createRestrictedDataToken") == [200, 403, 200]
        statuses = await r.control.statuses("getOrder")
        assert statuses[-2:] == [403, 200]  # refused once, renewed, answered
        rdts = [e for e in await r.control.received("createRestrictedDataToken")]
        assert rdts and all(e["body"]["restrictedResources"] for e in rdts)
        token = r.client.df_orders_rdt().value
        assert token and token.startswith("Atz.sprdt|")
        text = caplog.text
        assert token not in text and "Atz.sprdt|" not in text
        for o in orders:  # nor the address
            assert o["orderDetails"]["shipToParty"]["addressLine1"] not in text


async def test_create_restricted_data_token_keeps_to_amazons_plan_of_one_per_second() -> None:
    async with rig() as r:
        assert r.client.rate_limit("createRestrictedDataToken") == (1.0, 10)
        assert r.client.rate_limit("getOrders") == (10.0, 10)


# --- DF orders ----------------------------------------------------------------------------


async def test_get_orders_pages_filters_and_sorts_like_amazon() -> None:
    async with rig() as r:
        now = datetime.now(UTC).replace(microsecond=0)
        for i, wh in enumerate(("WH1", "WH2") * 3):
            at = (now - timedelta(hours=6 - i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            await r.control.add_df_orders(count=40, warehouse=wh, createdAt=at, seed=i)
        params = orders_query(**window(), ship_from_party_id="WH1", status="NEW", limit=50)
        page = await r.client.df_get_orders_page(params)
        assert len(page.orders) == 50 and page.next_token
        got = [o async for o in r.client.df_get_orders(**window(), ship_from_party_id="WH1",
                                                       status="NEW", limit=50)]  # fmt: skip
        assert len(got) == len({o["purchaseOrderNumber"] for o in got}) == 120
        assert {o["orderDetails"]["shipFromParty"]["partyId"] for o in got} == {"WH1"}
        dates = [o["orderDetails"]["orderDate"] for o in got]
        assert dates == sorted(dates)
        desc = [o async for o in r.client.df_get_orders(**window(), sort_order="DESC")]
        assert len(desc) == 240
        assert [o["orderDetails"]["orderDate"] for o in desc] == sorted(
            (o["orderDetails"]["orderDate"] for o in desc), reverse=True
        )
        assert [o async for o in r.client.df_get_orders(**window(), status="SHIPPED")] == []
        # the single page, WH1's three of 50, all 240 in three of 100, one empty SHIPPED one
        assert (await r.control.statuses("getOrders")) == [200] * (1 + 3 + 3 + 1)


async def test_get_orders_refuses_what_amazon_refuses() -> None:
    async with rig() as r:
        rdt = await r.client.df_orders_rdt().get()
        now = datetime.now(UTC)
        iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
        cases = [
            {"createdAfter": iso(now - timedelta(days=1))},  # createdBefore is required
            {"createdAfter": iso(now - timedelta(days=8)), "createdBefore": iso(now)},
            {"createdAfter": iso(now), "createdBefore": iso(now), "limit": "101"},
            {"createdAfter": iso(now), "createdBefore": iso(now), "status": "ACKNOWLEDGED"},
            {"nextToken": "not-a-token"},
        ]
        for params in cases:
            status, body = await r.call("GET", DF_ORDERS, rdt, **params)
            assert status == 400 and body["errors"][0]["code"] == "InvalidInput", params
        status, body = await r.call("GET", DF_ORDERS + "/NOSUCH01", rdt)
        assert status == 404
        with pytest.raises(ValueError, match="limit"):
            orders_query(**window(), limit=0)
        with pytest.raises(ValueError, match="7 days"):
            orders_query(**window(hours=24 * 8))


async def test_generated_df_orders_are_valid_amazon_orders(amazon_models_dir: Path) -> None:
    amazon_models.configure(amazon_models_dir)
    try:
        async with rig(df_order_count=30) as r:
            got = [o async for o in r.client.df_get_orders(**window(hours=13))]
            assert len(got) == 30
            for o in got:
                assert amazon_models.validate("df-orders", "Order", o) == []
                assert o["orderDetails"]["shipToParty"]["addressLine1"]  # an address, in clear
    finally:
        amazon_models.configure(None)


# --- acknowledgements, shipping, transactions ---------------------------------------------


async def test_an_acknowledgement_is_a_df_transaction_and_accepts_the_order() -> None:
    async with rig() as r:
        [order] = await r.control.add_df_orders(count=1)
        number = order["purchaseOrderNumber"]
        tid = await r.client.df_submit_acknowledgement(ack_body(order))
        status = await r.client.wait_for_transaction(tid, direct_fulfillment=True, poll_s=0.05)
        assert status == {"transactionId": tid, "status": "Success"}
        assert (await r.control.df_orders())[number] == "ACCEPTED"
        [sent] = await r.control.received("submitAcknowledgement.df")
        assert sent["status"] == 202 and sent["transactionId"] == tid
        with pytest.raises(SpApiError) as caught:  # not a retail transaction
            await r.client.get_transaction(tid)
        assert caught.value.status == 404


async def test_an_unknown_order_or_line_ends_in_a_failed_transaction() -> None:
    async with rig() as r:
        [order] = await r.control.add_df_orders(count=1)
        body = ack_body(order)
        body["orderAcknowledgements"][0]["itemAcknowledgements"][0]["itemSequenceNumber"] = "00099"
        tid = await r.client.df_submit_acknowledgement(body)
        with pytest.raises(TransactionFailed, match="INVALID_ITEM_SEQUENCE"):
            await r.client.wait_for_transaction(tid, direct_fulfillment=True, poll_s=0.05)
        other = {**order, "purchaseOrderNumber": "ZZZZ9999"}
        tid = await r.client.df_submit_shipment_confirmations(confirmation_body(other))
        with pytest.raises(TransactionFailed, match="INVALID_ORDER_ID"):
            await r.client.wait_for_transaction(tid, direct_fulfillment=True, poll_s=0.05)
        assert (await r.control.df_orders())[order["purchaseOrderNumber"]] == "NEW"


async def test_transaction_faults_and_rate_limits_apply_to_df_operations() -> None:
    async with rig() as r:
        [order] = await r.control.add_df_orders(count=1)
        await r.control.set_faults(
            {
                "operations": {"submitAcknowledgement.df": {"failNext": 1, "errorStatus": 503}},
                "transactionFailures": {"purchaseOrders": [order["purchaseOrderNumber"]]},
            }
        )
        tid = await r.client.df_submit_acknowledgement(ack_body(order))
        assert await r.control.statuses("submitAcknowledgement.df") == [503, 202]  # retried
        with pytest.raises(TransactionFailed):
            await r.client.wait_for_transaction(tid, direct_fulfillment=True, poll_s=0.05)
        await r.control.set_faults({"operations": {"getOrder": {"throttleNext": 2}}})
        await r.client.df_get_order(order["purchaseOrderNumber"])
        assert await r.control.statuses("getOrder") == [429, 429, 200]


async def test_shipment_confirmations_and_status_updates_are_df_transactions() -> None:
    async with rig() as r:
        [order] = await r.control.add_df_orders(count=1)
        tid = await r.client.df_submit_shipment_confirmations(confirmation_body(order))
        await r.client.wait_for_transaction(tid, direct_fulfillment=True, poll_s=0.05)
        assert (await r.control.df_orders())[order["purchaseOrderNumber"]] == "SHIPPED"
        tid = await r.client.df_submit_shipment_status_updates(status_update_body(order))
        status = await r.client.wait_for_transaction(tid, direct_fulfillment=True, poll_s=0.05)
        assert status["status"] == "Success"
        assert await r.control.statuses("submitShipmentStatusUpdates") == [202]


async def test_the_shipping_operations_the_product_does_not_use_answer_501() -> None:
    async with rig() as r:
        lwa = await r.lwa()
        status, body = await r.call("GET", DF_SHIPPING + "/packingSlips/ABC123", lwa)
        assert status == 501 and body["errors"][0]["code"] == "NotImplemented"


async def test_a_body_that_breaks_the_sandboxs_structure_rules_is_a_400() -> None:
    async with rig() as r:
        lwa = await r.lwa()
        status, _ = await r.call("POST", DF_ACKS, lwa, {"orderAcknowledgements": []})
        assert status == 400
        status, _ = await r.call(
            "POST", DF_SHIPPING + "/shipmentConfirmations", lwa,
            {"shipmentConfirmations": [{"items": []}]},
        )  # fmt: skip
        assert status == 400


async def test_every_body_the_clients_send_validates_against_amazons_models(
    amazon_models_dir: Path,
) -> None:
    amazon_models.configure(amazon_models_dir)
    try:
        async with rig() as r:
            [order] = await r.control.add_df_orders(count=1)
            await r.client.df_submit_acknowledgement(ack_body(order))
            await r.client.df_submit_shipment_confirmations(confirmation_body(order))
            await r.client.df_submit_shipment_status_updates(status_update_body(order))
            await r.client.df_get_order(order["purchaseOrderNumber"])
            sent = {
                "SubmitAcknowledgementRequest": ("df-orders", "submitAcknowledgement.df"),
                "SubmitShipmentConfirmationsRequest": ("df-shipping", df_shipping.CONFIRM),
                "SubmitShipmentStatusUpdatesRequest": ("df-shipping", df_shipping.STATUS),
                "CreateRestrictedDataTokenRequest": ("tokens", "createRestrictedDataToken"),
            }
            for definition, (api, op) in sent.items():
                [entry] = await r.control.received(op)
                assert entry["status"] in (200, 202)
                assert amazon_models.validate(api, definition, entry["body"]) == [], op
            # a body that breaks the model is not sent
            bad = ack_body(order)
            del bad["orderAcknowledgements"][0]["vendorOrderNumber"]
            with pytest.raises(InvalidBody, match="vendorOrderNumber"):
                await r.client.df_submit_acknowledgement(bad)
            assert len(await r.control.received("submitAcknowledgement.df")) == 1
            # and the sandbox refuses it too
            status, body = await r.call("POST", DF_ACKS, await r.lwa(), bad)
            assert status == 400 and "vendorOrderNumber" in body["errors"][0]["message"]
    finally:
        amazon_models.configure(None)


async def test_without_the_models_bodies_still_go_out_and_are_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(amazon_models.ENV_DIR, raising=False)
    amazon_models.configure(None)
    before = amazon_models.UNVALIDATED["df-orders"]
    async with rig() as r:
        [order] = await r.control.add_df_orders(count=1)
        tid = await r.client.df_submit_acknowledgement(ack_body(order))
        await r.client.wait_for_transaction(tid, direct_fulfillment=True, poll_s=0.05)
    assert amazon_models.UNVALIDATED["df-orders"] == before + 1


async def test_many_concurrent_reads_share_one_rdt() -> None:
    async with rig() as r:
        orders = await r.control.add_df_orders(count=5)
        await asyncio.gather(*(r.client.df_get_order(o["purchaseOrderNumber"]) for o in orders))
        assert await r.control.statuses("createRestrictedDataToken") == [200]


async def test_df_transactions_of_acks_and_shipping_are_answered_in_both_versions() -> None:
    async with rig() as r:
        [order] = await r.control.add_df_orders(count=1)
        tids = [
            await r.client.df_submit_acknowledgement(ack_body(order)),
            await r.client.df_submit_shipment_confirmations(confirmation_body(order)),
        ]
        settings = make_settings(r.url, spapi_df_transactions_version="2021-12-28")
        async with SpApiClient(settings, retry=FAST) as v2021:
            for tid in tids:
                for client in (r.client, v2021):
                    status = await client.wait_for_transaction(
                        tid, direct_fulfillment=True, poll_s=0.05
                    )
                    assert status == {"transactionId": tid, "status": "Success"}
        assert await r.control.statuses("getTransactionStatus.v2021_12_28")

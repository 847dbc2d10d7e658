"""Contract tests of the SP-API client against the local sandbox, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest

from streams.adapters.amazon_models import example, validate
from streams.adapters.spapi import (
    CountingHooks,
    DateWindowError,
    NoBudgetShare,
    RetryPolicy,
    SpApiAuthError,
    SpApiClient,
    SpApiError,
    TransactionFailed,
)
from streams.config import Settings
from streams.domain.acknowledgement import encode_acknowledgement, request_body
from streams.domain.rate_budget import Plan, Share
from streams.sandbox.amazon import SandboxConfig, SandboxControl, running_sandbox
from streams.sandbox.amazon.generator import acknowledgement_for

FAST = RetryPolicy(attempts=8, backoff_s=0.01, max_backoff_s=0.05, jitter_s=0.01)
PLANTED_SECRET = "PLANTED-client-secret-5f1e9c"
PLANTED_REFRESH = "Atzr|PLANTED-refresh-token-77aa"


def make_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "spapi_endpoint": url,
        "spapi_lwa_url": url + "/auth/o2/token",
        "spapi_client_id": "amzn1.application-oa2-client.test",
        "spapi_client_secret": PLANTED_SECRET,
        "spapi_refresh_token": PLANTED_REFRESH,
        "spapi_selling_party": "VENDOR1",
        "spapi_timeout_s": 5.0,
        **overrides,
    }
    return Settings(**values)


@dataclass
class Rig:
    client: SpApiClient
    control: SandboxControl
    hooks: CountingHooks
    url: str


@asynccontextmanager
async def rig(
    *,
    retry: RetryPolicy = FAST,
    rate_limits: dict[str, tuple[float, int]] | None = None,
    settings: dict[str, Any] | None = None,
    **sandbox: Any,
) -> AsyncIterator[Rig]:
    """A sandbox that knows the planted credentials, and a client pointed at it."""
    config = SandboxConfig(
        **{
            "seed": 3,
            "transaction_processing_s": 0.3,
            "client_id": "amzn1.application-oa2-client.test",
            "client_secret": PLANTED_SECRET,
            "refresh_token": PLANTED_REFRESH,
            **sandbox,
        }
    )
    hooks = CountingHooks()
    async with running_sandbox(config) as url, aiohttp.ClientSession() as http:
        client = SpApiClient(
            make_settings(url, **(settings or {})),
            hooks=hooks,
            retry=retry,
            rate_limits=rate_limits,
        )
        async with client:
            yield Rig(client, SandboxControl(url, http), hooks, url)


async def test_token_is_exchanged_cached_and_renewed_before_expiry() -> None:
    async with rig(token_ttl_s=1) as r:
        for _ in range(3):
            await r.client.get_purchase_order("4Z32PABC")
        assert await r.control.statuses("lwaToken") == [200]  # cached
        await asyncio.sleep(1.0)  # past the renewal point (90% of a 1 s lifetime)
        await r.client.get_purchase_order("4Z32PABC")
        assert await r.control.statuses("lwaToken") == [200, 200]
        assert await r.control.statuses("getPurchaseOrder") == [200] * 4  # never a 403


async def test_an_expired_token_is_renewed_once_on_403() -> None:
    async with rig() as r:
        await r.client.get_purchase_order("4Z32PABC")
        await r.control.expire_tokens()  # the sandbox forgets; the client still trusts it
        order = await r.client.get_purchase_order("4Z32PABC")
        assert order["purchaseOrderNumber"] == "4Z32PABC"
        assert await r.control.statuses("getPurchaseOrder") == [200, 403, 200]
        assert await r.control.statuses("lwaToken") == [200, 200]


async def test_pagination_follows_next_token_over_more_than_100_orders() -> None:
    async with rig(order_count=250) as r:
        since = datetime.now(UTC) - timedelta(days=6, hours=23)
        orders = [o async for o in r.client.get_purchase_orders(created_after=since)]
        assert len(orders) == len({o["purchaseOrderNumber"] for o in orders}) == 250
        assert all(validate("vendorOrders", "Order", o) == [] for o in orders)
        assert await r.control.statuses("getPurchaseOrders") == [200, 200, 200]

        numbers = [
            o
            async for o in r.client.get_purchase_orders(
                created_after=since, include_details=False, purchase_order_state="New", limit=30
            )
        ]
        assert numbers and all(
            set(o) == {"purchaseOrderNumber", "purchaseOrderState"} for o in numbers
        )
        assert {o["purchaseOrderState"] for o in numbers} == {"New"}


async def test_the_seven_day_window_is_checked_before_any_request() -> None:
    async with rig() as r:
        start = datetime(2025, 1, 1, tzinfo=UTC)
        with pytest.raises(DateWindowError, match="at most 7 days"):
            r.client.get_purchase_orders(
                created_after=start, created_before=start + timedelta(days=8)
            )
        with pytest.raises(DateWindowError, match="changedAfter"):
            r.client.get_purchase_orders(changed_after=datetime.now(UTC) - timedelta(days=8))
        with pytest.raises(DateWindowError, match="earlier than"):
            r.client.get_purchase_orders(created_after=start, created_before=start - timedelta(1))
        with pytest.raises(ValueError, match="limit"):
            r.client.get_purchase_orders(limit=101)
        assert await r.control.received("getPurchaseOrders") == []
        # exactly 7 days is allowed
        week = r.client.get_purchase_orders(
            created_after=start, created_before=start + timedelta(days=7)
        )
        assert [o async for o in week] == []


async def test_unknown_purchase_order_is_a_404_error_without_retries() -> None:
    async with rig() as r:
        with pytest.raises(SpApiError) as caught:
            await r.client.get_purchase_order("NOSUCHPO")
        err = caught.value
        assert (err.status, err.operation, err.codes) == (404, "getPurchaseOrder", ["NotFound"])
        assert not err.retryable and err.request_id
        assert "NotFound: The resource specified does not exist." in str(err)
        assert await r.control.statuses("getPurchaseOrder") == [404]


async def test_acknowledgement_accepted_then_processing_then_success() -> None:
    async with rig() as r:
        since = datetime.now(UTC) - timedelta(days=5)
        new_orders = r.client.get_purchase_orders(
            created_after=since, purchase_order_state="New", include_details=False
        )
        number = (await anext(new_orders))["purchaseOrderNumber"]
        order = await r.client.get_purchase_order(number)

        ack = acknowledgement_for(order)
        tid = await r.client.submit_acknowledgement([ack])
        first = await r.client.get_transaction(tid)
        assert first == {"transactionId": tid, "status": "Processing"}
        final = await r.client.wait_for_transaction(tid, timeout_s=10, poll_s=0.1)
        assert final["status"] == "Success"

        after = await r.client.get_purchase_order(number)
        assert after["purchaseOrderState"] == "Acknowledged"
        [sent] = await r.control.received("submitAcknowledgement")
        assert sent["status"] == 202 and sent["transactionId"] == tid
        assert sent["body"] == {"acknowledgements": [ack]}


async def test_several_acknowledgements_in_one_request_bytes_kept_as_built() -> None:
    async with rig() as r:
        since = datetime.now(UTC) - timedelta(days=5)
        numbers = [
            o["purchaseOrderNumber"]
            async for o in r.client.get_purchase_orders(
                created_after=since, purchase_order_state="New", include_details=False
            )
        ][:3]
        assert len(numbers) == 3
        acks = [acknowledgement_for(await r.client.get_purchase_order(n)) for n in numbers]
        # the first two as canonical bytes (as the ack sender has them), the third as a dict
        built = [encode_acknowledgement(a) for a in acks[:2]]
        tid = await r.client.submit_acknowledgement([*built, acks[2]])
        final = await r.client.wait_for_transaction(tid, timeout_s=10, poll_s=0.1)
        assert final["status"] == "Success"
        [sent] = await r.control.received("submitAcknowledgement")
        assert sent["status"] == 202 and sent["transactionId"] == tid
        assert sent["body"] == {"acknowledgements": acks}
        for n in numbers:
            assert (await r.client.get_purchase_order(n))["purchaseOrderState"] == "Acknowledged"
        # what goes on the wire embeds the built bytes unchanged
        assert request_body(built) == b'{"acknowledgements":[' + b",".join(built) + b"]}"
        assert orjson.dumps({"acknowledgements": [orjson.Fragment(b) for b in built]}) == (
            request_body(built)
        )


async def test_invalid_acknowledgements_raise_amazons_errors() -> None:
    async with rig() as r:
        order = await r.client.get_purchase_order("4Z32PABC")
        ack = acknowledgement_for(order)
        del ack["items"][1]["netCost"]
        with pytest.raises(SpApiError) as caught:
            await r.client.submit_acknowledgement([ack])
        err = caught.value
        assert err.status == 400 and err.codes == ["InvalidInput"]
        assert "netCost is a required field" in err.errors[0]["message"]
        assert "acknowledgements/0/items/1/netCost" in str(err)

        ack = acknowledgement_for(order)
        del ack["sellingParty"]
        with pytest.raises(SpApiError, match="'sellingParty' is a required property"):
            await r.client.submit_acknowledgement([ack])
        assert await r.control.statuses("submitAcknowledgement") == [400, 400]  # no retries
        with pytest.raises(ValueError, match="nothing to submit"):
            await r.client.submit_acknowledgement([])


async def test_a_429_storm_is_ridden_out_with_backoff() -> None:
    async with rig() as r:
        await r.control.set_faults({"operations": {"getPurchaseOrder": {"throttleNext": 5}}})
        order = await r.client.get_purchase_order("4Z32PABC")
        assert order["purchaseOrderState"] == "Closed"
        assert await r.control.statuses("getPurchaseOrder") == [429] * 5 + [200]
        counts = r.hooks.counts["getPurchaseOrder"]
        assert (counts.requests, counts.throttled, counts.errors) == (6, 5, 5)


async def test_retries_are_bounded() -> None:
    async with rig(retry=RetryPolicy(attempts=3, backoff_s=0.01, jitter_s=0.0)) as r:
        await r.control.set_faults({"operations": {"getPurchaseOrder": {"throttleNext": 50}}})
        with pytest.raises(SpApiError) as caught:
            await r.client.get_purchase_order("4Z32PABC")
        assert caught.value.status == 429 and caught.value.codes == ["QuotaExceeded"]
        assert await r.control.statuses("getPurchaseOrder") == [429] * 3


async def test_the_client_limiter_stays_within_the_sandbox_bucket() -> None:
    # the sandbox allows 50/s burst 10; the client keeps to 40/s burst 8: never a 429
    async with rig(
        rate_per_s=50.0,
        burst=10,
        rate_limits={"getPurchaseOrder": (40.0, 8)},
        retry=RetryPolicy(attempts=1),
    ) as r:
        results = await asyncio.gather(
            *(r.client.get_purchase_order("4Z32PABC") for _ in range(48))
        )
        assert len(results) == 48
        statuses = await r.control.statuses("getPurchaseOrder")
        assert statuses.count(200) == 48 and 429 not in statuses
        assert r.hooks.counts["getPurchaseOrder"].throttled == 0


async def test_the_client_slows_down_to_the_reported_rate_limit() -> None:
    async with rig(rate_per_s=5.0, burst=5) as r:
        assert r.client.rate_limit("getPurchaseOrder") == (10.0, 10)
        await r.client.get_purchase_order("4Z32PABC")
        assert r.client.rate_limit("getPurchaseOrder") == (5.0, 5)  # x-amzn-RateLimit-Limit
        assert r.client.rate_limit("getTransaction") == (10.0, 20)  # untouched, burst 20


async def test_5xx_is_retried_then_succeeds() -> None:
    async with rig() as r:
        await r.control.set_faults(
            {
                "operations": {
                    "submitInventoryUpdate": {"failNext": 2, "errorStatus": 503},
                    "getTransactionStatus": {"failNext": 1, "errorStatus": 500},
                }
            }
        )
        items = [
            {
                "vendorProductIdentifier": "V1",
                "availableQuantity": {"amount": 3, "unitOfMeasure": "Each"},
            }
        ]
        tid = await r.client.submit_inventory_update("WH1", items)
        assert (await r.client.get_df_transaction(tid))["status"] == "Processing"
        assert await r.control.statuses("submitInventoryUpdate") == [503, 503, 202]
        assert await r.control.statuses("getTransactionStatus") == [500, 200]


async def test_a_failed_transaction_is_surfaced() -> None:
    async with rig() as r:
        await r.control.set_faults({"transactionFailures": {"purchaseOrders": ["4Z32PABC"]}})
        order = await r.client.get_purchase_order("4Z32PABC")
        tid = await r.client.submit_acknowledgement([acknowledgement_for(order)])
        with pytest.raises(TransactionFailed) as caught:
            await r.client.wait_for_transaction(tid, timeout_s=10, poll_s=0.1)
        assert caught.value.transaction_id == tid
        assert caught.value.errors[0]["code"] == "INVALID_ORDER_ID"
        status = await r.client.wait_for_transaction(tid, poll_s=0.1, raise_on_failure=False)
        assert status["status"] == "Failure" and status["errors"]

        # "fail the next N submissions", whatever they are
        await r.control.set_faults(
            {"transactionFailures": {"next": 1, "code": "X", "message": "y"}}
        )
        body = example("vendorShipments", "SubmitShipmentConfirmations", "202")[0]
        confirmations = body["request"]["parameters"]["body"]["value"]["shipmentConfirmations"]
        tid = await r.client.submit_shipment_confirmations(confirmations)
        with pytest.raises(TransactionFailed, match="X: y"):
            await r.client.wait_for_transaction(tid, timeout_s=10, poll_s=0.1)
        tid = await r.client.submit_shipment_confirmations(confirmations)
        assert (await r.client.wait_for_transaction(tid, poll_s=0.1))["status"] == "Success"


async def test_inventory_update_batch_is_accepted_as_sent() -> None:
    async with rig() as r:
        items = [
            {
                "buyerProductIdentifier": f"B0{i:08d}",
                "vendorProductIdentifier": f"SKU-{i:05d}",
                "availableQuantity": {"amount": i % 17, "unitOfMeasure": "Each"},
                "isObsolete": False,
            }
            for i in range(500)
        ]
        tid = await r.client.submit_inventory_update("WH 1/A", items)
        assert tid
        tid_full = await r.client.submit_inventory_update("WH1", [], is_full_update=True)
        assert tid_full != tid
        with pytest.raises(ValueError, match="nothing to submit"):
            await r.client.submit_inventory_update("WH1", [])
        sent = await r.control.received("submitInventoryUpdate")
        assert [e["status"] for e in sent] == [202, 202]
        assert sent[0]["path"].endswith("/warehouses/WH%201%2FA/items")
        assert sent[0]["body"]["inventory"] == {
            "sellingParty": {"partyId": "VENDOR1"},
            "isFullUpdate": False,
            "items": items,
        }
        assert sent[1]["body"]["inventory"]["isFullUpdate"] is True


async def test_connection_errors_are_retried_then_raised() -> None:
    async with running_sandbox(SandboxConfig(order_count=0)) as url:
        pass  # the port is free again: nothing listens there any more
    retry = RetryPolicy(attempts=3, backoff_s=0.01, jitter_s=0.0)
    hooks = CountingHooks()
    async with SpApiClient(make_settings(url), hooks=hooks, retry=retry) as client:
        with pytest.raises(SpApiError) as caught:
            await client.get_purchase_order("4Z32PABC")
    assert caught.value.status == 0 and caught.value.retryable
    assert caught.value.operation == "lwaToken"
    assert hooks.counts["lwaToken"].requests == 3


async def test_secrets_never_reach_logs_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # 1. the sandbox refuses the planted credentials
    async with rig(client_secret="something-else") as r:
        with pytest.raises(SpApiAuthError) as caught:
            await r.client.get_purchase_order("4Z32PABC")
        err = caught.value
        assert err.status == 401 and err.codes == ["invalid_client"]
        assert r.hooks.counts["lwaToken"].requests == 1  # a refusal is not retried
        texts = [str(err), repr(err), repr(err.errors), repr(r.client)]
    # 2. a full, successful, retried and re-authenticated session at DEBUG level
    async with rig() as r:
        await r.control.set_faults({"operations": {"*": {"throttleNext": 2}}})
        await r.client.get_purchase_order("4Z32PABC")
        await r.control.expire_tokens()
        await r.client.get_purchase_order("4Z32PABC")
        token = r.client._token.value if r.client._token else ""  # read only to look for it
        assert token.startswith("Atza|")
        with pytest.raises(SpApiError) as not_found:
            await r.client.get_purchase_order("NOSUCHPO")
        texts += [str(not_found.value), repr(not_found.value), repr(r.client)]
        texts.append(repr(await r.control.received()))
    texts.append(caplog.text)
    assert "retry 1 of" in caplog.text  # the logs did capture the client's activity
    for text in texts:
        for secret in (PLANTED_SECRET, PLANTED_REFRESH, token):
            assert secret not in text


async def test_server_supplied_text_is_scrubbed_of_secrets() -> None:
    async with rig() as r:
        # a hostile or buggy server echoing a secret back must not leak it through our errors
        echo = {"purchaseOrderNumber": PLANTED_SECRET}
        with pytest.raises(SpApiError) as caught:
            await r.client.get_purchase_order(echo["purchaseOrderNumber"])
        assert PLANTED_SECRET not in str(caught.value)
        assert "****" in str(caught.value)


async def test_a_broken_hook_does_not_break_calls() -> None:
    class Broken:
        def on_response(self, operation: str, status: int, seconds: float) -> None:
            raise RuntimeError("metrics backend down")

    async with running_sandbox(SandboxConfig(order_count=0)) as url:
        settings = make_settings(
            url,
            spapi_client_secret="local-secret",
            spapi_refresh_token="Atzr|local-refresh-token",
            spapi_client_id="amzn1.application-oa2-client.local",
        )
        async with aiohttp.ClientSession() as session:
            client = SpApiClient(settings, session, hooks=Broken())
            async with client:
                order = await client.get_purchase_order("4Z32PABC")
            assert order["purchaseOrderNumber"] == "4Z32PABC"
            assert not session.closed  # a shared session stays open


INVENTORY_ITEM = {
    "vendorProductIdentifier": "V1",
    "availableQuantity": {"amount": 3, "unitOfMeasure": "Each"},
}


@pytest.mark.parametrize("version", ["v1", "2021-12-28"])
async def test_df_transactions_are_checked_on_the_df_api(version: str) -> None:
    settings = {"spapi_df_transactions_version": version}
    async with rig(settings=settings) as r:
        tid = await r.client.submit_inventory_update("WH1", [INVENTORY_ITEM])
        status = await r.client.wait_for_transaction(tid, direct_fulfillment=True, poll_s=0.1)
        assert status == {"transactionId": tid, "status": "Success"}
        want = f"/vendor/directFulfillment/transactions/{version}/transactions/{tid}"
        paths = [e["path"] for e in await r.control.received() if e["path"].endswith(tid)]
        assert paths[0] == want
        with pytest.raises(SpApiError) as caught:  # the retail API does not know it
            await r.client.get_transaction(tid)
        assert caught.value.status == 404

        await r.control.set_faults({"transactionFailures": {"next": 1}})
        tid = await r.client.submit_inventory_update("WH1", [INVENTORY_ITEM])
        with pytest.raises(TransactionFailed, match="INVALID_ORDER_ID"):
            await r.client.wait_for_transaction(tid, direct_fulfillment=True, poll_s=0.1)


async def test_retail_transactions_are_not_asked_of_the_df_api() -> None:
    async with rig() as r:
        order = await r.client.get_purchase_order("4Z32PABC")
        tid = await r.client.submit_acknowledgement([acknowledgement_for(order)])
        assert (await r.client.get_transaction(tid))["transactionId"] == tid
        with pytest.raises(SpApiError) as caught:
            await r.client.get_df_transaction(tid)
        assert caught.value.status == 404 and caught.value.operation == "getTransactionStatus"


async def test_a_share_of_the_group_plan_narrows_the_limit_and_none_refuses_requests() -> None:
    async with rig() as r:
        op = "getPurchaseOrder"
        assert r.client.rate_limit(op) == (10.0, 10)
        r.client.set_share([op], Share(2, 6))
        rate, burst = r.client.rate_limit(op)
        assert (round(rate, 6), burst) == (round(10 / 3, 6), 3)
        assert r.client.group_plan(op) == Plan(10.0, 10)  # the group's plan is kept
        r.client.set_share([op], Share(0, 6))
        with pytest.raises(NoBudgetShare) as caught:  # at once, and nothing reaches Amazon
            await asyncio.wait_for(r.client.get_purchase_order("4Z32PABC"), 1.0)
        assert caught.value.status == 429 and caught.value.retryable
        assert await r.control.statuses(op) == []
        r.client.set_share([op], Share(6, 6))  # the partitions came back
        assert (await r.client.get_purchase_order("4Z32PABC"))["purchaseOrderNumber"] == "4Z32PABC"
        assert await r.control.statuses(op) == [200]

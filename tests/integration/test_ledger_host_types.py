"""Inventory entries (and supply channels) that already carry another custom Type, against
the commercetools emulator over HTTP: an entry holds one Type, so the ledger field must live
on that Type. Named in STREAMS_CT_LEDGER_HOST_TYPES, the worker adds the field
(addFieldDefinition) at start-up and applies commands exactly once, keeping the entry's own
fields; not named, every command for such an entry is refused with a reason that says what
to set (nothing written). Supply channels of another Type are reported the same way, or get
the policy fields."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from streams.adapters.commercetools import CommercetoolsClient
from streams.agents.channel_policy import add_fields, ensure_type
from streams.agents.ct_command_applier import CommandApplier
from streams.config import Settings
from streams.domain.inventory_commands import LEDGER_FIELD, applied_ids
from streams.domain.warehouse_policy import (
    channel_policy_type_draft,
    foreign_type_problems,
    policy_from_channels,
)
from tests.integration.test_ct_commands import TYPE_KEY, command

pytestmark = [pytest.mark.ctmock]

WMS_TYPE = {
    "key": "wms-entry",
    "name": {"en": "WMS data"},
    "resourceTypeIds": ["inventory-entry"],
    "fieldDefinitions": [
        {"name": "bin", "label": {"en": "Bin"}, "required": False,
         "type": {"name": "String"}, "inputHint": "SingleLine"},
    ],
}  # fmt: skip


async def _no_sleep(_: float) -> None:
    pass


async def seeded(ct_api: str) -> tuple[Settings, dict[str, Any]]:
    s = Settings(
        ct_api_url=ct_api, ct_auth_url=ct_api, ct_project_key=f"host-{uuid.uuid4().hex[:10]}"
    )
    async with CommercetoolsClient(s) as ct:
        await ct.create_type(dict(WMS_TYPE))
        entry = await ct.create_inventory_entry(
            {
                "sku": "SKU-W",
                "quantityOnStock": 50,
                "custom": {
                    "type": {"typeId": "type", "key": "wms-entry"},
                    "fields": {"bin": "A-7"},
                },
            }
        )
    return s, entry


async def entry_now(s: Settings, entry_id: str) -> dict[str, Any]:
    async with CommercetoolsClient(s) as ct:
        found = await ct.get_inventory_entry(entry_id)
    assert found is not None
    return found


async def test_an_entry_of_a_type_not_named_is_refused_with_what_to_set(
    ct_api: str, caplog: pytest.LogCaptureFixture
) -> None:
    s, entry = await seeded(ct_api)
    async with CommercetoolsClient(s) as ct:
        applier = CommandApplier(ct, type_key=TYPE_KEY, retry_s=30, sleep=_no_sleep)
        with caplog.at_level(logging.ERROR):
            [result] = await applier.apply([command("w1", "reserve", "SKU-W", 5)])
    assert result.outcome == "dlq"
    assert "STREAMS_CT_LEDGER_HOST_TYPES=wms-entry" in (result.reason or "")
    # loud at start-up too, before any entry is touched
    assert any("wms-entry" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    now = await entry_now(s, entry["id"])
    assert now["quantityOnStock"] == 50 and now["version"] == entry["version"]


async def test_a_named_type_gets_the_ledger_field_and_commands_apply_once(ct_api: str) -> None:
    s, entry = await seeded(ct_api)
    async with CommercetoolsClient(s) as ct:
        applier = CommandApplier(
            ct, type_key=TYPE_KEY, host_types=("wms-entry",), retry_s=30, sleep=_no_sleep
        )
        first = await applier.apply([command("w1", "reserve", "SKU-W", 5)])
        again = await applier.apply([command("w1", "reserve", "SKU-W", 5)])
        second = await applier.apply([command("w2", "release", "SKU-W", 2)])
        wms = await ct.get_type_by_key("wms-entry")
    assert [r.outcome for r in first + again + second] == ["applied", "duplicate", "applied"]
    assert wms is not None and {f["name"] for f in wms["fieldDefinitions"]} == {"bin", LEDGER_FIELD}
    now = await entry_now(s, entry["id"])
    assert now["quantityOnStock"] == 50 - 5 + 2
    assert applied_ids(now) == {"w1", "w2"}
    assert now["custom"]["type"]["id"] == wms["id"]  # still the operator's Type
    assert now["custom"]["fields"]["bin"] == "A-7"  # and its own fields


# --- the channel policy on supply channels that carry a Type of their own ----------------------
LOCATOR_TYPE = {
    "key": "store-locator",
    "name": {"en": "Store locator"},
    "resourceTypeIds": ["channel"],
    "fieldDefinitions": [
        {"name": "openingHours", "label": {"en": "Hours"}, "required": False,
         "type": {"name": "String"}, "inputHint": "SingleLine"},
    ],
}  # fmt: skip


async def test_channels_of_another_type_are_reported_then_get_the_policy_fields(
    ct_api: str,
) -> None:
    s = Settings(
        ct_api_url=ct_api, ct_auth_url=ct_api, ct_project_key=f"chan-{uuid.uuid4().hex[:10]}"
    )
    own = "streams-channel-policy"
    async with CommercetoolsClient(s) as ct:
        await ensure_type(ct, channel_policy_type_draft(own))
        await ct.create_type(dict(LOCATOR_TYPE))
        custom = {
            "type": {"typeId": "type", "key": "store-locator"},
            "fields": {"openingHours": "9-5"},
        }
        ch = await ct.create_channel(
            {"key": "wh-store", "roles": ["InventorySupply"], "custom": custom}
        )
        types = {str(t["id"]): t for t in await ct.types_for("channel")}
        [problem] = foreign_type_problems(await ct.all_channels(), types, own, ())
        assert (
            "STREAMS_CT_CHANNEL_POLICY_HOST_TYPES=store-locator" in problem
            and "wh-store" in problem
        )
        # named as a host: the fields are added to the operator's Type, which then holds them
        await add_fields(ct, "store-locator", channel_policy_type_draft("store-locator"))
        await add_fields(ct, "store-locator", channel_policy_type_draft("store-locator"))  # once
        locator = await ct.get_type_by_key("store-locator")
        assert locator is not None
        names = [f["name"] for f in locator["fieldDefinitions"]]
        assert names == ["openingHours", "amazonEligible", "amazonPriority", "amazonSafetyStock"]
        ch = await ct.update_channel(
            ch["id"],
            ch["version"],
            [{"action": "setCustomField", "name": "amazonEligible", "value": True}],
        )
        channels = await ct.all_channels()
        types = {str(t["id"]): t for t in await ct.types_for("channel")}
    assert foreign_type_problems(channels, types, own, ()) == []
    rule = policy_from_channels(channels).rules[ch["id"]]
    assert rule.eligible is True
    assert ch["custom"]["fields"]["openingHours"] == "9-5"

"""Warehouse policy for Amazon (pure): which supply channels serve Amazon, in what order, and
how much stock each holds back.

The policy lives in commercetools, as custom fields on the supply channels (one Type, see
:func:`channel_policy_type_draft`), so the team that runs the warehouses changes it where it
manages them, without a deployment:

* ``amazonEligible`` (Boolean): the channel may serve Amazon (true) or may not (false);
* ``amazonPriority`` (Number): reservations take from the lowest number first (1 before 2);
* ``amazonSafetyStock`` (Number): eaches the channel keeps for other sales channels; Amazon
  is neither offered nor allocated them.

Where a channel carries no such field, configuration decides as before this policy existed:
the SKU mapping's ``amazonChannels``, else ``STREAMS_DEFAULT_AMAZON_CHANNELS``, else every
channel; the SKU buffer (the mapping's ``safetyBuffer``, else ``STREAMS_DEFAULT_SAFETY_BUFFER``)
comes off the SKU's total. Precedence, most specific first:

1. ``amazonEligible = false`` on the channel: never serves Amazon;
2. ``amazonEligible = true``: serves Amazon, unless the SKU's mapping names channels and not
   this one (a per-SKU restriction narrows the warehouse policy, it never widens it);
3. no field: the configuration above.

The SKU's mapping buffer always applies (it is about the SKU, not a warehouse); the global
default buffer applies only when no eligible channel states a safety stock (a stated
per-channel safety stock replaces the global guess). Stock records name channels by id; the
policy also knows each channel's key, so mappings and settings may name channels by either.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeGuard

from streams.domain.mapping import SkuMapping

ELIGIBLE_FIELD = "amazonEligible"
PRIORITY_FIELD = "amazonPriority"
SAFETY_FIELD = "amazonSafetyStock"
POLICY_FIELDS = (ELIGIBLE_FIELD, PRIORITY_FIELD, SAFETY_FIELD)
MAX_SAFETY_STOCK = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """What commercetools says about one channel; None = the channel does not say."""

    id: str
    key: str | None = None
    eligible: bool | None = None
    priority: float | None = None
    safety_stock: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "eligible": self.eligible,
            "priority": self.priority,
            "safetyStock": self.safety_stock,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ChannelRule:
        return cls(
            str(d["id"]), d.get("key"), d.get("eligible"), d.get("priority"), d.get("safetyStock")
        )


@dataclass(frozen=True)
class ChannelPolicy:
    """Every channel's rule, by channel id, as last read from commercetools."""

    rules: Mapping[str, ChannelRule] = field(default_factory=dict)
    fetched_at: float | None = None
    problems: tuple[str, ...] = ()

    @cached_property
    def revision(self) -> str:
        """Changes exactly when a rule changes (not when it was merely read again)."""
        body = json.dumps([self.rules[k].to_dict() for k in sorted(self.rules)], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def rule(self, channel_id: str) -> ChannelRule | None:
        return self.rules.get(channel_id)

    def key_of(self, channel_id: str) -> str | None:
        r = self.rules.get(channel_id)
        return r.key if r is not None else None

    def id_of(self, key: str) -> str | None:
        return next((r.id for r in self.rules.values() if r.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "fetchedAt": self.fetched_at,
            "channels": [self.rules[k].to_dict() for k in sorted(self.rules)],
            "problems": list(self.problems),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ChannelPolicy:
        rules = (ChannelRule.from_dict(c) for c in d.get("channels", ()))
        return cls({r.id: r for r in rules}, d.get("fetchedAt"), tuple(d.get("problems", ())))


# --- the rules ------------------------------------------------------------------------------
def is_eligible(
    channel: str,
    mapping: SkuMapping | None,
    default_channels: tuple[str, ...] = (),
    policy: ChannelPolicy | None = None,
) -> bool:
    """May ``channel`` (an id, as in stock records) serve Amazon for this SKU?"""
    rule = policy.rule(channel) if policy is not None else None
    if rule is not None and rule.eligible is False:
        return False
    key = rule.key if rule is not None else None
    if rule is not None and rule.eligible is True:
        named = mapping.amazonChannels if mapping is not None else ()
        return not named or channel in named or (key is not None and key in named)
    # the channel does not say: the configuration decides, exactly as without a policy
    return mapping is None or mapping.eligible(channel, key, default_channels)


def safety_stock(channel: str, policy: ChannelPolicy | None) -> int:
    rule = policy.rule(channel) if policy is not None else None
    return (rule.safety_stock or 0) if rule is not None else 0


def offered(channel: str, available: int, policy: ChannelPolicy | None) -> int:
    """Eaches of one channel Amazon may be offered: what is available beyond its safety stock."""
    return max(0, available - safety_stock(channel, policy))


def sku_buffer(
    mapping: SkuMapping | None,
    default_buffer: int,
    policy: ChannelPolicy | None,
    eligible_channels: Iterable[str],
) -> int:
    """Eaches held back from the SKU's total (on top of per-channel safety stock)."""
    if mapping is not None and mapping.safetyBuffer:
        return mapping.safetyBuffer
    if policy is not None:
        stated = (policy.rule(ch) for ch in eligible_channels)
        if any(r is not None and r.safety_stock is not None for r in stated):
            return 0  # the channels state their safety stock: no global guess on top
    return default_buffer


def reservation_order(free: Mapping[str, int], policy: ChannelPolicy | None) -> list[str]:
    """Channels in the order a reservation takes from them: by priority (lowest number
    first; channels without one after those with one), then where the most is free (one
    line touches as few entries as possible), then by id (deterministic)."""

    def rank(ch: str) -> tuple[bool, float, int, str]:
        rule = policy.rule(ch) if policy is not None else None
        prio = rule.priority if rule is not None else None
        return (prio is None, prio if prio is not None else 0.0, -free[ch], ch)

    return sorted(free, key=rank)


def release_order(held: Mapping[str, int], policy: ChannelPolicy | None) -> list[str]:
    """Channels in the order a release gives back: the least preferred first, so what a line
    still holds stays where the policy wants it shipped from; without priorities, the
    largest hold first."""
    ordered = reservation_order(held, policy)
    if policy is None or all(
        (r := policy.rule(ch)) is None or r.priority is None for ch in ordered
    ):
        return sorted(held, key=lambda ch: (-held[ch], ch))
    return list(reversed(ordered))


def plan_reservation(
    free: Mapping[str, int], need: int, policy: ChannelPolicy | None
) -> list[tuple[str, int]]:
    """Split ``need`` eaches over the eligible channels (``free``: channel -> eaches free now)
    honouring priority and safety stock; (channel, eaches) in the order taken."""
    order = reservation_order(free, policy)
    taken: dict[str, int] = {}
    left = need
    for ch in order:
        take = min(left, offered(ch, free[ch], policy))
        if take > 0:
            taken[ch] = take
            left -= take
        if not left:
            break
    # The decision never accepts more than the channels offer, so this is for inconsistent
    # states only (e.g. a channel's eligibility changed under a pending release): dip into
    # safety stock in priority order rather than reserve on nothing.
    for ch in order:
        if not left:
            break
        spare = max(0, free[ch] - taken.get(ch, 0))
        take = min(left, spare)
        if take > 0:
            taken[ch] = taken.get(ch, 0) + take
            left -= take
    if left and order:
        taken[order[0]] = taken.get(order[0], 0) + left
    return [(ch, taken[ch]) for ch in order if ch in taken]


# --- reading the policy from commercetools Channels --------------------------------------------
def policy_from_channels(
    channels: Iterable[Mapping[str, Any]], fetched_at: float | None = None
) -> ChannelPolicy:
    """The policy from commercetools ``Channel`` JSON. Fields are read by name whatever
    custom Type the channel uses (a channel has one Type; a project that already has one on
    its channels adds our three fields to it). A value of the wrong type counts as unset and
    is reported in ``problems``."""
    rules: dict[str, ChannelRule] = {}
    problems: list[str] = []
    for ch in channels:
        cid, key = str(ch.get("id") or ""), ch.get("key")
        if not cid:
            continue
        custom = ch.get("custom")
        fields: Mapping[str, Any] = {}
        if isinstance(custom, Mapping) and isinstance(custom.get("fields"), Mapping):
            fields = custom["fields"]
        name = key or cid

        def bad(f: str, v: Any, why: str, name: str = name) -> None:
            problems.append(f"channel {name}: {f}={v!r} ignored ({why})")

        eligible: bool | None = None
        v = fields.get(ELIGIBLE_FIELD)
        if isinstance(v, bool):
            eligible = v
        elif v is not None:
            bad(ELIGIBLE_FIELD, v, "not a Boolean")
        priority: float | None = None
        v = fields.get(PRIORITY_FIELD)
        if _number(v):
            priority = float(v)
        elif v is not None:
            bad(PRIORITY_FIELD, v, "not a finite Number")
        safety: int | None = None
        v = fields.get(SAFETY_FIELD)
        if _number(v) and 0 <= v <= MAX_SAFETY_STOCK:
            safety = math.ceil(v)  # a fraction of an each: keep the whole one back
        elif v is not None:
            bad(SAFETY_FIELD, v, "not a Number >= 0")
        rules[cid] = ChannelRule(cid, str(key) if key else None, eligible, priority, safety)
    return ChannelPolicy(rules, fetched_at, tuple(problems))


def _number(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# --- custom Types (drafts and what an existing Type lacks) -------------------------------------
def field_definition(name: str, type_name: str, label: str) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": name,
        "label": {"en": label},
        "required": False,
        "type": {"name": type_name},
    }
    if type_name == "String":
        d["inputHint"] = "SingleLine"
    return d


def type_draft(
    key: str, name: str, resource: str, fields: Sequence[dict[str, Any]], description: str
) -> dict[str, Any]:
    return {
        "key": key,
        "name": {"en": name},
        "description": {"en": description},
        "resourceTypeIds": [resource],
        "fieldDefinitions": list(fields),
    }


def missing_fields(existing: Mapping[str, Any], draft: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Field definitions of ``draft`` an existing Type lacks (to add, never to change)."""
    have = {f.get("name") for f in existing.get("fieldDefinitions", ())}
    return [f for f in draft["fieldDefinitions"] if f["name"] not in have]


def channel_policy_type_draft(key: str) -> dict[str, Any]:
    return type_draft(
        key,
        "Amazon warehouse policy",
        "channel",
        [
            field_definition(ELIGIBLE_FIELD, "Boolean", "May serve Amazon"),
            field_definition(PRIORITY_FIELD, "Number", "Amazon priority (1 = first)"),
            field_definition(SAFETY_FIELD, "Number", "Safety stock kept from Amazon (eaches)"),
        ],
        "Read by the Amazon Vendor Central stream processor: which warehouses serve Amazon, "
        "in what order, and the eaches each keeps back",
    )


def foreign_type_problems(
    channels: Iterable[Mapping[str, Any]],
    types_by_id: Mapping[str, Mapping[str, Any]],
    own_key: str,
    hosts: Sequence[str],
) -> list[str]:
    """Supply channels whose custom Type (a channel holds one) has none of the policy fields
    and is neither ours nor one the worker may extend: what to set, per Type."""
    wanted = {f["name"] for f in channel_policy_type_draft(own_key)["fieldDefinitions"]}
    out: dict[str, list[str]] = {}
    for ch in channels:
        if "InventorySupply" not in (ch.get("roles") or ()):
            continue
        ref = (ch.get("custom") or {}).get("type") or {}
        t = types_by_id.get(str(ref.get("id") or ""))
        if t is None or t.get("key") in (own_key, *hosts):
            continue
        if wanted & {f.get("name") for f in t.get("fieldDefinitions", ())}:
            continue
        out.setdefault(str(t.get("key") or t.get("id")), []).append(str(ch.get("key") or ch["id"]))
    return [
        f"supply channels {', '.join(sorted(chs)[:10])} carry custom Type {key!r} without the "
        f"Amazon policy fields ({', '.join(sorted(wanted))}) and a channel holds one Type only: "
        f"set STREAMS_CT_CHANNEL_POLICY_HOST_TYPES={key} so the worker adds them "
        "(addFieldDefinition), or add them yourself; until then these channels follow the "
        "configuration (mappings, STREAMS_DEFAULT_AMAZON_CHANNELS)"
        for key, chs in sorted(out.items())
    ]

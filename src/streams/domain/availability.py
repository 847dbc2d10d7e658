"""What Amazon is offered for a SKU: the one rule the inventory flow publishes by and the
operations watchers and ``/api/sku`` report by, so none of them can disagree with what was
sent (they did: the status view once recomputed it without the warehouse policy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from streams.domain.inventory import SkuState
from streams.domain.warehouse_policy import ChannelPolicy, is_eligible, sku_buffer


class _Configured(Protocol):
    @property
    def default_amazon_channels(self) -> tuple[str, ...]: ...

    @property
    def default_safety_buffer(self) -> int: ...


@dataclass(frozen=True)
class Defaults:
    """The configuration's say where neither the SKU mapping nor the warehouse policy has one."""

    channels: tuple[str, ...] = ()
    buffer: int = 0

    @classmethod
    def of(cls, settings: _Configured) -> Defaults:
        return cls(tuple(settings.default_amazon_channels), settings.default_safety_buffer)


def offered(state: SkuState, defaults: Defaults, policy: ChannelPolicy | None) -> int | None:
    """Eaches Amazon is told for this SKU now; None: the SKU is not offered (unmapped)."""
    if not state.publishable():
        return None
    return state.availability(defaults.channels, defaults.buffer, policy)


def eligible_channels(
    state: SkuState, defaults: Defaults, policy: ChannelPolicy | None
) -> frozenset[str]:
    """The SKU's stock channels that serve Amazon, as :func:`offered` counts them."""
    return frozenset(
        ch for ch in state.channels if is_eligible(ch, state.mapping, defaults.channels, policy)
    )


def buffer_of(state: SkuState, defaults: Defaults, policy: ChannelPolicy | None) -> int:
    """The SKU's buffer held back from its total, as :func:`offered` applies it."""
    return sku_buffer(
        state.mapping, defaults.buffer, policy, eligible_channels(state, defaults, policy)
    )

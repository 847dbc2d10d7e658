"""One Amazon usage plan shared by the workers of a consumer group.

Amazon's usage plans (rate per second, burst) hold per selling partner, application and
operation, whichever process sends. A group of N workers that each keep the whole plan may
send N times it. The rule here: the partitions that drive an operation (the inventory
sender's ``amazon.inventory-updates`` for ``submitInventoryUpdate`` and its DF transaction
checks) split the plan evenly, and a worker keeps the part of the partitions it is assigned.

* rate: ``plan.rate * owned / total``; the workers' rates add up to the plan exactly;
* burst: ``floor(plan.burst * owned / total)``, at least 1 while the worker owns anything;
  the bursts add up to at most the plan's as long as ``total <= plan.burst`` (each
  partition's part of the burst is then at least 1) - :func:`fits` says whether it does;
* a worker that owns nothing sends nothing (its share is :data:`NOTHING`);
* a changed share starts with an empty bucket (``start_empty``): the previous owner's last
  burst may still count in Amazon's bucket, so the new owner does not add one of its own.

Since a group's assignment covers each partition once, the group together stays within the
plan whatever the assignment is (after a rebalance the shares follow it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """A token bucket: ``burst`` requests at once, refilled at ``rate`` per second."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if self.rate < 0 or self.burst < 0 or (self.rate == 0) != (self.burst == 0):
            raise ValueError(f"not a usage plan: rate {self.rate}, burst {self.burst}")

    @property
    def sends(self) -> bool:
        return self.burst > 0


NOTHING = Plan(0.0, 0)


@dataclass(frozen=True)
class Share:
    """This worker's part of a plan: ``owned`` of the ``total`` partitions driving it."""

    owned: int
    total: int

    def __post_init__(self) -> None:
        if self.total < 1 or not 0 <= self.owned <= self.total:
            raise ValueError(f"not a share: {self.owned} of {self.total} partitions")


WHOLE = Share(1, 1)


def worker_plan(plan: Plan, share: Share) -> Plan:
    """The part of the group's ``plan`` a worker with ``share`` keeps to."""
    if share.owned == 0 or not plan.sends:
        return NOTHING
    if share.owned == share.total:
        return plan
    fraction = share.owned / share.total
    return Plan(plan.rate * fraction, max(1, math.floor(plan.burst * fraction)))


def fits(plan: Plan, total: int) -> bool:
    """Whether any assignment of ``total`` partitions keeps the group within ``plan``: the
    floor of each worker's burst part is at least 1 when each partition's part is."""
    return total <= plan.burst


def group_total(plans: Iterable[Plan]) -> Plan:
    """What a group's workers send together at most (rates and bursts added)."""
    rate, burst = 0.0, 0
    for p in plans:
        rate += p.rate
        burst += p.burst
    return Plan(rate, burst) if burst else NOTHING

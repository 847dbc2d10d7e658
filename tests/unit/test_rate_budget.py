"""The split of one Amazon usage plan across a consumer group's workers."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.rate_budget import (
    NOTHING,
    WHOLE,
    Plan,
    Share,
    fits,
    group_total,
    worker_plan,
)

AMAZON = Plan(10.0, 10)


def test_three_workers_on_six_partitions_take_a_third_each() -> None:
    plans = [worker_plan(AMAZON, Share(2, 6)) for _ in range(3)]
    assert plans[0].burst == 3 and plans[0].rate == pytest.approx(10 / 3)
    total = group_total(plans)
    assert total.rate == pytest.approx(10.0) and total.burst == 9


def test_uneven_assignments_follow_the_partitions() -> None:
    # 6 partitions on 4 workers: 2, 2, 1, 1
    plans = [worker_plan(AMAZON, Share(n, 6)) for n in (2, 2, 1, 1)]
    assert [p.burst for p in plans] == [3, 3, 1, 1]
    assert group_total(plans).rate == pytest.approx(10.0)


def test_a_worker_that_owns_nothing_sends_nothing_and_one_that_owns_all_keeps_the_plan() -> None:
    assert worker_plan(AMAZON, Share(0, 6)) == NOTHING and not NOTHING.sends
    assert worker_plan(AMAZON, Share(6, 6)) == AMAZON
    assert worker_plan(AMAZON, WHOLE) == AMAZON
    assert worker_plan(NOTHING, Share(3, 6)) == NOTHING


def test_bursts_fit_while_partitions_do_not_outnumber_the_burst() -> None:
    assert fits(AMAZON, 6) and fits(AMAZON, 10) and not fits(AMAZON, 12)
    # 12 partitions, burst 10, one each: the floor of 10/12 is 0, so each keeps 1 - over
    over = group_total(worker_plan(AMAZON, Share(1, 12)) for _ in range(12))
    assert over.burst == 12 > AMAZON.burst


@given(
    total=st.integers(1, 64),
    workers=st.integers(1, 12),
    rate=st.floats(0.1, 100),
    burst=st.integers(1, 64),
    seed=st.randoms(use_true_random=False),
)
def test_any_assignment_keeps_the_group_within_the_plan(
    total: int, workers: int, rate: float, burst: int, seed: object
) -> None:
    plan = Plan(rate, burst)
    owner = [seed.randrange(workers) for _ in range(total)]  # type: ignore[attr-defined]
    shares = [Share(owner.count(w), total) for w in range(workers)]
    got = group_total(worker_plan(plan, s) for s in shares)
    assert got.rate <= plan.rate * (1 + 1e-9)
    if fits(plan, total):
        assert got.burst <= plan.burst
    for s in shares:  # everyone who owns partitions can send
        assert worker_plan(plan, s).sends == (s.owned > 0)


def test_nonsense_is_refused() -> None:
    for bad in itertools.chain(
        [lambda: Share(3, 2), lambda: Share(-1, 2), lambda: Share(0, 0)],
        [lambda: Plan(-1.0, 1), lambda: Plan(1.0, 0), lambda: Plan(0.0, 1)],
    ):
        with pytest.raises(ValueError):
            bad()

"""A worker that has stopped making progress says where it waits, then exits to be restarted.

Two states hold a worker's partitions while nothing moves, and neither ends by itself:

- a rebalance that does not finish: ``app.rebalancing`` stays true and the tables' recovery
  applies nothing (seen once in CI after a group member was SIGKILLed: the survivor never
  became ready again, the PO poller - which skips while rebalancing - published nothing more,
  and a member that joined later could not take the partitions over);
- a commit that does not return (Faust flushes the producer before every offset commit; a
  flush waiting on a batch that never goes out was seen once at shutdown).

After ``dump_s`` in either state the watch logs it with the stacks of the tasks that are
waiting (what a bug report needs); after ``exit_s`` it exits with code 70, as the shutdown
watchdog does. Every step is crash-safe (docs/reliability.md), so a restart loses nothing
and is what an orchestrator does with an exited worker; the group rebalances without it
meanwhile. While Kafka is unreachable nothing is counted: a restart would not help.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streams.observability.health import recovery_remaining

log = logging.getLogger(__name__)

EXIT_CODE = 70


@dataclass(frozen=True)
class Sample:
    """What the watch reads from the app on each look."""

    rebalancing: bool
    recovery_remaining: int | None  # changelog records the recovery still has to apply
    commit: object | None  # the commit in progress (Faust's future), None when idle
    kafka_ok: bool


@dataclass
class Stall:
    """Since when a state that should end has not ended, and what was done about it."""

    what: str
    since: float
    mark: object  # the rebalance's recovery position, or the commit, that did not move
    dumped: bool = False


def next_stall(prev: Stall | None, s: Sample, now: float) -> Stall | None:
    """The stall going on after sample ``s`` (pure: the watch's rule, unit tested)."""
    if not s.kafka_ok:
        return None
    if s.commit is not None:
        if prev is not None and prev.what == "commit" and prev.mark is s.commit:
            return prev
        return Stall("commit", now, s.commit)
    if s.rebalancing:
        if prev is not None and prev.what == "rebalance" and prev.mark == s.recovery_remaining:
            return prev
        return Stall("rebalance", now, s.recovery_remaining)
    return None


def task_stacks(limit: int = 12) -> list[str]:
    """One line per frame of each waiting task, innermost last, for the log."""
    out: list[str] = []
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:  # no running loop: nothing to show
        return out
    for task in tasks:
        frames = task.get_stack(limit=limit)
        if not frames:
            continue
        out.append(f"task {task.get_name()}:")
        for f in frames:
            code = f.f_code
            out.append(f"  {code.co_filename}:{f.f_lineno} {code.co_name}")
    return out


class StallWatch:
    """Looks at the app every ``every_s`` seconds (a plain task, not a Faust timer: those
    are what may be stuck)."""

    def __init__(
        self,
        sample: Callable[[], Sample],
        *,
        dump_s: float,
        exit_s: float,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        exit_now: Callable[[int], Any] = os._exit,
    ) -> None:
        self.sample = sample
        self.dump_s = dump_s
        self.exit_s = exit_s
        self.every_s = every_s
        self.clock = clock
        self.exit_now = exit_now
        self.stall: Stall | None = None

    def look(self) -> None:
        now = self.clock()
        self.stall = st = next_stall(self.stall, self.sample(), now)
        if st is None:
            return
        age = now - st.since
        if age >= self.dump_s and not st.dumped:
            st.dumped = True
            log.warning(
                "stall: the %s has not moved for %.0fs (exit at STREAMS_STALL_EXIT_S=%gs); "
                "the waiting tasks:\n%s",
                st.what, age, self.exit_s,
                "\n".join(f"stall| {ln}" for ln in task_stacks()),
            )  # fmt: skip
        if age >= self.exit_s:
            log.error(
                "stall: the %s has not moved for %.0fs: exiting with code %d to be restarted "
                "(as after a SIGKILL; the next start resumes from the committed offsets)",
                st.what, age, EXIT_CODE,
            )  # fmt: skip
            logging.shutdown()
            self.exit_now(EXIT_CODE)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                self.look()
            except Exception:  # a broken look must not end the watch
                log.exception("stall watch")


def faust_sample(app: Any, kafka_ok: Callable[[], bool]) -> Callable[[], Sample]:
    """How the watch reads a Faust app (``_commit_fut``: a private, see versions.py)."""

    def sample() -> Sample:
        return Sample(
            rebalancing=bool(getattr(app, "rebalancing", False)),
            recovery_remaining=recovery_remaining(app),
            # read ``_consumer``, not ``consumer``: the property would create one
            commit=getattr(getattr(app, "_consumer", None), "_commit_fut", None),
            kafka_ok=kafka_ok(),
        )

    return sample

"""Faust's current event, which routes a table write (store and changelog partition)."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust
from faust.streams import _current_event
from faust.types import EventT


@contextmanager
def bind_event(event: EventT) -> Iterator[None]:
    """Make ``event`` Faust's current event while a batch writes tables.

    Faust routes a table write (store partition and changelog partition) by the current
    event. With ``take_events`` that is the last event buffered, which may belong to another
    partition; binding an event of the partition being written keeps both right.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def raw_topic(app: faust.App, name: str, **kwargs: Any) -> faust.TopicT:
    """A topic of bytes in, bytes out: the agents decode with orjson themselves."""
    return app.topic(name, key_serializer="raw", value_serializer="raw", **kwargs)


class PartitionEvent:
    """Stands in for an event of ``topic``/``partition`` where a timer writes a table: Faust
    routes a store write by the current event's partition and nothing else."""

    class _Message:
        def __init__(self, topic: str, partition: int) -> None:
            self.topic = topic
            self.partition = partition

    def __init__(self, topic: str, partition: int) -> None:
        self.message = self._Message(topic, partition)

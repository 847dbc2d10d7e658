"""Moved to :mod:`streams.runtime.consumer` (and :mod:`streams.runtime.commit`); kept so
imports of the old path still work while other branches move over. Import from there."""

from streams.runtime.commit import ReadOffsets, Tracked
from streams.runtime.consumer import (
    BoundedWaitConsumer,
    ContiguousCommitConsumer,
    StreamsApp,
    TakenSensor,
    TrackedMessage,
)

__all__ = [
    "BoundedWaitConsumer",
    "ContiguousCommitConsumer",
    "ReadOffsets",
    "StreamsApp",
    "TakenSensor",
    "Tracked",
    "TrackedMessage",
]

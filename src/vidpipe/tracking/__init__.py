"""Trackers: give each detection the id of the object it belongs to, frame after frame."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ..detections import Detections
from ..errors import InputError
from .bytetrack import ByteTrack, ByteTrackConfig


@runtime_checkable
class Tracker(Protocol):
    """Stateful per video: call `update` once per processed frame, in order."""

    name: str

    def update(self, detections: Detections, time: float | None = None) -> Detections:
        """The frame's tracked detections, with `track_id` set (ids >= 1)."""
        ...

    def reset(self) -> None: ...

    def params(self) -> dict: ...


TRACKERS: dict[str, Callable[..., Tracker]] = {"bytetrack": ByteTrack}
NO_TRACKER = "none"


def create_tracker(name: str, fps: float, params: dict | None = None) -> Tracker | None:
    """A fresh tracker `name` for a video at `fps`; None for `none`."""
    if name == NO_TRACKER:
        return None
    if name not in TRACKERS:
        raise InputError(f"unknown tracker {name!r} (available: {', '.join([*TRACKERS, NO_TRACKER])})")
    return TRACKERS[name](fps=fps, **(params or {}))


__all__ = ["ByteTrack", "ByteTrackConfig", "NO_TRACKER", "TRACKERS", "Tracker", "create_tracker"]

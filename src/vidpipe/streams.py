"""Frame streams: how a source's frames become `(frame, tracked detections)` pairs, chosen once per run.

- `StagedStream` (files and finite streams): the staged engine. The reading thread decodes (and, for a
  staged backend, prepares and submits to the model); the detect stage collects results and tracks.
- `SequentialStream` (`--sequential`): the same work on one thread, one batch at a time; same outputs.
- `LiveStream` (cameras, live streams): the newest-frame mailbox; one frame at a time, never a stale one.

Each yields pairs in source order, reports its stages' profiles and stops its threads in `close()`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from typing import Protocol

import numpy as np

from .detections import Detections
from .detectors import Detector, StagedDetector
from .engine import StageProfile, Stages
from .frames import Frame
from .live import LatestFrames, LiveMonitor
from .sources import Source
from .tracking import Tracker

QUEUE_BATCHES = 2  # batches waiting between two stages: enough to keep each busy, little memory

Pair = tuple[Frame, Detections]


class FrameStream(Protocol):
    profiles: list[StageProfile]

    def __iter__(self) -> Iterator[Pair]: ...

    def close(self) -> None:
        """Stop the stream's threads (call before closing the source)."""
        ...


def batched(items: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def detect(detector: Detector, batch: list[Frame]) -> list[Pair]:
    return list(zip(batch, detector.detect([f.image for f in batch])))


def track(tracker: Tracker | None, pairs: list[Pair]) -> list[Pair]:
    if tracker is None:
        return pairs
    return [(frame, tracker.update(detections, frame.time)) for frame, detections in pairs]


class SequentialStream:
    """Detect a batch, track it, hand it on; one thread."""

    def __init__(self, frames: Iterable[Frame], detector: Detector, tracker: Tracker | None, batch_size: int) -> None:
        self.profiles: list[StageProfile] = []
        self._pairs = (pair for batch in batched(frames, batch_size)
                       for pair in track(tracker, detect(detector, batch)))

    def __iter__(self) -> Iterator[Pair]:
        return self._pairs

    def close(self) -> None:
        self._pairs.close()


class StagedStream:
    """The staged engine: decoding overlaps inference, which overlaps the consumer's writing."""

    def __init__(self, frames: Iterable[Frame], detector: Detector, tracker: Tracker | None, batch_size: int) -> None:
        batches: Iterable = batched(frames, batch_size)
        if isinstance(detector, StagedDetector):
            # The reading thread decodes, prepares and submits; the model queues the work, and the detect
            # stage only waits for results, so inference never pauses for Python's pre- or post-processing.
            batches = ((batch, detector.submit(detector.prepare([f.image for f in batch]))) for batch in batches)

            def step(item: tuple[list[Frame], object]) -> list[Pair]:
                return track(tracker, list(zip(item[0], detector.collect(item[1]))))
        else:
            def step(batch: list[Frame]) -> list[Pair]:
                return track(tracker, detect(detector, batch))
        self._stages = Stages(batches, [("detect", step)], queue_size=QUEUE_BATCHES)
        self.profiles = self._stages.profiles
        self._pairs = (pair for batch in self._stages for pair in batch)

    def __iter__(self) -> Iterator[Pair]:
        return self._pairs

    def close(self) -> None:
        self._pairs.close()  # stops the engine's threads


class LiveStream:
    """Newest frame first, one at a time (batching would only add latency); inference time is recorded."""

    def __init__(self, source: Source, detector: Detector, tracker: Tracker | None, monitor: LiveMonitor) -> None:
        # Compile the model for this frame size before the first real frame, whose latency would show it.
        detector.detect([np.zeros((source.info.height, source.info.width, 3), np.uint8)])
        self.profiles: list[StageProfile] = []
        capture = LatestFrames(source)
        monitor.capture = capture

        def pairs() -> Iterator[Pair]:
            for frame in capture:
                start = time.perf_counter()
                (detections,) = detector.detect([frame.image])
                monitor.inference_ms.append(1000 * (time.perf_counter() - start))
                yield frame, tracker.update(detections, frame.time) if tracker else detections

        self._pairs = pairs()

    def __iter__(self) -> Iterator[Pair]:
        return self._pairs

    def close(self) -> None:
        self._pairs.close()  # stops the capture thread

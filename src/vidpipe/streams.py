"""Frame streams: how a source's frames become `(frame, tracked detections)` pairs, chosen once per run.

- `StagedStream` (files and finite streams): the staged engine. The reading thread decodes (and, for a
  staged backend, prepares and submits to the model); the detect stage collects results and tracks.
- `SequentialStream` (`--sequential`): the same work on one thread, one batch at a time; same outputs.
- `LiveStream` (cameras, live streams): the newest-frame mailbox; one frame at a time, never a stale one.

Each yields pairs in source order, reports its stages' profiles and stops its threads in `close()`. With
`detect_every` K > 1, the detector sees every Kth frame and the tracker predicts the boxes of the others
(`Detections.detected` False), in every stream.
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
from .screen import Screen
from .sources import Source
from .tracking import CameraMotion, SceneCuts, Tracker

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


class Schedule:
    """Which frames the detector sees: every `every`th processed frame, counted across batches."""

    def __init__(self, every: int = 1) -> None:
        self.every, self._count = every, 0

    def pick(self, batch: list[Frame]) -> list[bool]:
        picked = [(self._count + i) % self.every == 0 for i in range(len(batch))]
        self._count += len(batch)
        return picked


def spread(found: Iterable[Detections], picked: list[bool]) -> list[Detections | None]:
    """The detections of the picked frames in their places, None for the frames the detector skipped."""
    found = iter(found)
    return [next(found) if p else None for p in picked]


def detect(detector: Detector, batch: list[Frame], picked: list[bool]) -> list[Detections | None]:
    """Detections for the picked frames, None for the others."""
    return spread(detector.detect([f.image for f, p in zip(batch, picked) if p]), picked)


def track(tracker: Tracker | None, batch: list[Frame], found: list[Detections | None],
          motion: CameraMotion | None = None, screen: Screen | None = None,
          cuts: SceneCuts | None = None) -> list[Pair]:
    """Each frame with its tracked detections; a frame the detector skipped gets the tracker's prediction.
    With `cuts`, every track ends where the video cuts to another shot; with `motion`, the tracks first move
    with the camera (every frame, detected or not); with `screen`, the detections in a mask or outside their
    class's limits are dropped first."""
    if screen:
        found = [d if d is None else screen(d, *(f.size or (0, 0))) for f, d in zip(batch, found)]
    if tracker is None:
        return list(zip(batch, found))
    pairs = []
    for frame, detections in zip(batch, found):
        if cuts and cuts(frame.image, frame.time):
            tracker.cut(frame.time)
        affine = motion(frame.image, frame.time) if motion else None
        if affine is not None:
            tracker.warp(affine)
        pairs.append((frame, tracker.predict(frame.time) if detections is None
                      else tracker.update(detections, frame.time, frame.size)))
        if motion:  # where the objects are: not the background the next estimate follows
            motion.exclude((pairs[-1][1] if detections is None else detections).xyxy)
    return pairs


def profiles(motion: CameraMotion | None, cuts: SceneCuts | None) -> list[StageProfile]:
    """The per-frame analyses' costs, for the run's per-stage figures."""
    return [part.profile for part in (motion, cuts) if part]


class SequentialStream:
    """Detect a batch, track it, hand it on; one thread."""

    def __init__(self, frames: Iterable[Frame], detector: Detector, tracker: Tracker | None, batch_size: int,
                 detect_every: int = 1, motion: CameraMotion | None = None, screen: Screen | None = None,
                 cuts: SceneCuts | None = None) -> None:
        self.profiles = profiles(motion, cuts)
        schedule = Schedule(detect_every)
        self._pairs = (pair for batch in batched(frames, batch_size)
                       for pair in track(tracker, batch, detect(detector, batch, schedule.pick(batch)), motion,
                                         screen, cuts))

    def __iter__(self) -> Iterator[Pair]:
        return self._pairs

    def close(self) -> None:
        self._pairs.close()


class StagedStream:
    """The staged engine: decoding overlaps inference, which overlaps the consumer's writing."""

    def __init__(self, frames: Iterable[Frame], detector: Detector, tracker: Tracker | None, batch_size: int,
                 detect_every: int = 1, motion: CameraMotion | None = None, screen: Screen | None = None,
                 cuts: SceneCuts | None = None) -> None:
        schedule = Schedule(detect_every)
        batches: Iterable = ((batch, schedule.pick(batch)) for batch in batched(frames, batch_size))
        if isinstance(detector, StagedDetector):
            # The reading thread decodes, prepares and submits; the model queues the work, and the detect
            # stage only waits for results, so inference never pauses for Python's pre- or post-processing.
            batches = ((batch, picked, detector.submit(detector.prepare([f.image for f, p in zip(batch, picked)
                                                                         if p])))
                       for batch, picked in batches)

            def step(item: tuple[list[Frame], list[bool], object]) -> list[Pair]:
                batch, picked, submitted = item
                return track(tracker, batch, spread(detector.collect(submitted), picked), motion, screen, cuts)
        else:
            def step(item: tuple[list[Frame], list[bool]]) -> list[Pair]:
                return track(tracker, item[0], detect(detector, *item), motion, screen, cuts)
        self._stages = Stages(batches, [("detect", step)], queue_size=QUEUE_BATCHES)
        self.profiles = self._stages.profiles + profiles(motion, cuts)
        self._pairs = (pair for batch in self._stages for pair in batch)

    def __iter__(self) -> Iterator[Pair]:
        return self._pairs

    def close(self) -> None:
        self._pairs.close()  # stops the engine's threads


class LiveStream:
    """Newest frame first, one at a time (batching would only add latency); inference time is recorded."""

    def __init__(self, source: Source, detector: Detector, tracker: Tracker | None, monitor: LiveMonitor,
                 detect_every: int = 1, motion: CameraMotion | None = None, screen: Screen | None = None,
                 cuts: SceneCuts | None = None) -> None:
        # Compile the model for this frame size before the first real frame, whose latency would show it.
        detector.detect([np.zeros((source.info.height, source.info.width, 3), np.uint8)])
        self.profiles = profiles(motion, cuts)
        capture = LatestFrames(source)
        monitor.capture = capture

        schedule = Schedule(detect_every)

        def pairs() -> Iterator[Pair]:
            for frame in capture:
                if not schedule.pick([frame])[0]:  # a skipped frame: the tracker's prediction, at once
                    yield track(tracker, [frame], [None], motion, cuts=cuts)[0]
                    continue
                start = time.perf_counter()
                (detections,) = detector.detect([frame.image])
                monitor.inference_ms.append(1000 * (time.perf_counter() - start))
                yield track(tracker, [frame], [detections], motion, screen, cuts)[0]

        self._pairs = pairs()

    def __iter__(self) -> Iterator[Pair]:
        return self._pairs

    def close(self) -> None:
        self._pairs.close()  # stops the capture thread

"""The staged streaming engine: each stage in its own thread, joined to the next by a bounded queue.

Decoding, inference and encoding spend their time in C libraries that release the GIL, so on a few cores
they overlap. Bounded queues keep memory flat for any input length and let a slow stage hold back the
ones before it. Every stage is a single thread, so items stay in order (the tracker needs them in order).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .stopping import frame_boundary

_END = object()  # end of stream marker


@dataclass
class StageProfile:
    """What one stage did: items handled, seconds busy, and how full its input queue was."""

    name: str
    capacity: int = 0  # input queue size (0: the stage reads the source itself)
    items: int = 0
    busy_s: float = 0.0
    _queue_sum: int = field(default=0, repr=False)
    _queue_samples: int = field(default=0, repr=False)

    def sample_queue(self, length: int) -> None:
        self._queue_sum += length
        self._queue_samples += 1

    @property
    def mean_queue(self) -> float:
        return self._queue_sum / self._queue_samples if self._queue_samples else 0.0


class Stages:
    """Run `source` through `stages` (name, function) in threads; iterate over the last stage's outputs.

    A stage function maps one item to one item. An exception in any stage stops the others and is raised
    to the consumer; a consumer that stops early (break, error, Ctrl-C) stops the stages too.
    """

    def __init__(self, source: Iterable, stages: list[tuple[str, Callable[[Any], Any]]], queue_size: int = 2) -> None:
        self.profiles = [StageProfile("read")] + [StageProfile(name, queue_size) for name, _ in stages]
        self._source = source
        self._functions = [fn for _, fn in stages]
        self._queues = [queue.Queue(queue_size) for _ in range(len(stages) + 1)]
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []

    def __iter__(self) -> Iterator:
        self._threads = [threading.Thread(target=self._read, name="vidpipe-read", daemon=True)]
        self._threads += [threading.Thread(target=self._work, args=(i,), name=f"vidpipe-{self.profiles[i + 1].name}",
                                           daemon=True) for i in range(len(self._functions))]
        for thread in self._threads:
            thread.start()
        try:
            while True:
                item = self._get(self._queues[-1])
                if item is _END:
                    break
                yield item
            if self._error is not None:
                raise self._error
        finally:
            self._stop.set()
            # Wait for every stage, the reader too: the caller closes the source next, and closing a
            # container while a thread still decodes from it crashes FFmpeg (as exiting during a model call
            # crashes its runtime), so a second stop waits until they are done. A live source blocked in a
            # read longer than this is left behind (a daemon thread).
            with frame_boundary():
                for thread in self._threads:
                    thread.join(timeout=30)

    def _read(self) -> None:
        """The first stage: its work is pulling the next item out of the source (decoding a frame)."""
        iterator = iter(self._source)
        try:
            self._stage(self.profiles[0], lambda: _END if self._stop.is_set() else None,
                        lambda _: next(iterator, _END), self._queues[0])
        finally:
            if hasattr(iterator, "close"):
                iterator.close()  # a source stopped early learns it here, on its own thread (what it left unread)

    def _work(self, index: int) -> None:
        profile, source = self.profiles[index + 1], self._queues[index]

        def pull():
            profile.sample_queue(source.qsize())
            return self._get(source)

        self._stage(profile, pull, self._functions[index], self._queues[index + 1])

    def _stage(self, profile: StageProfile, pull: Callable[[], Any], function: Callable[[Any], Any],
               out: queue.Queue) -> None:
        """Pull, work (timed), pass on; until the input or the work says it is the end, or a failure."""
        try:
            while (item := pull()) is not _END:
                start = time.perf_counter()
                result = function(item)
                profile.busy_s += time.perf_counter() - start
                if result is _END:
                    break
                profile.items += 1
                self._put(out, result)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._fail(exc)
        finally:
            self._put(out, _END, force=True)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._stop.set()

    def _get(self, source: queue.Queue):
        while True:
            try:
                return source.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return _END

    def _put(self, target: queue.Queue, item, force: bool = False) -> None:
        """Block while the next stage is busy; give up when the run is stopping (the end marker always goes)."""
        while True:
            try:
                target.put(item, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():
                    if not force:
                        return
                    try:  # make room for the end marker: the consumer is gone or failing
                        target.get_nowait()
                    except queue.Empty:
                        pass

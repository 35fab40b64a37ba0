"""Several live sources, one detector: each camera keeps its own tracks, lines, zones and outputs, and the
cameras take fair turns at one model.

Each camera is read on its own thread into a newest-frame mailbox (`live.LatestFrames`). One scheduler
thread takes the frames waiting, in turns (the camera served longest ago first), and hands them to the model:
where the runtime runs several single-frame requests at once (OpenVINO on a CPU), as many frames as it has
streams, each taken the moment one is free; where it batches (torch, a GPU), every waiting frame in one
batch across cameras, one batch at a time. Either way a frame is taken as late as the model can start on
it, so it never waits behind others, and the mailbox keeps it new. The caller's thread then tracks each
frame with its own camera's tracker and writes it to that camera's outputs, in order, while the model works
on the next. A camera that drops, stalls or fails holds up no other: the scheduler only takes frames that
are there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from . import broker, stopping
from .config import VIEW, CameraEntry, PipelineConfig
from .detections import Detections
from .detectors import Detector, StagedDetector
from .engine import StageProfile
from .errors import InputError
from .events import CLOSE_WAIT_S
from .files import locked, write_atomic
from .frames import Frame
from .live import LatestFrames, LiveMonitor, open_live, plays_a_file
from .live_options import LiveOptions
from .pipeline import Pipeline, finish_run
from .session import RunResult, RunSession
from .sinks import Viewer
from .sources import Source
from .streams import Schedule, profiles, spread, track
from .tracking import Tracker

log = logging.getLogger("vidpipe")
_END = object()


def camera_names(entries: Sequence[CameraEntry]) -> list[str]:
    """Each camera's name: the one given, else one made from its source (a file's stem, `camera0`, a
    stream's host and path); a made name that is taken gets `-2`, `-3`... Two given names alike are an error."""
    given = [e.name for e in entries if e.name]
    twice = sorted({n for n in given if given.count(n) > 1})
    if twice:
        raise InputError(f"camera name(s) {', '.join(twice)} given twice: each camera needs its own")
    names: list[str] = []
    for entry in entries:
        name = entry.name or _name_of(entry.source)
        base, n = name, 1
        while name in names or (not entry.name and name in given):
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


def _name_of(source: str) -> str:
    if source.isdigit():
        return f"camera{source}"
    if "://" in source:
        rest = source.split("://", 1)[1].split("?")[0]
        host, _, path = rest.partition("/")
        text = "-".join(p for p in (host.split("@")[-1].split(":")[0], *path.split("/")[-1:]) if p)
    else:
        text = Path(source.rstrip("/")).stem or "camera"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:64] or "camera"


class Camera:
    """One source of a many-camera run: its reader, its tracker (made when the first frame tells its rate),
    camera motion, live figures and outputs."""

    def __init__(self, name: str, spec: str, source: Source, config: PipelineConfig, pipeline: Pipeline,
                 wake: threading.Event) -> None:
        self.name, self.spec, self.source, self.config = name, spec, source, config
        self._pipeline = pipeline
        self.screen = pipeline.screen_for(config)  # its masks and filters (a class the model lacks fails here)
        self.capture = LatestFrames(source, wake)
        self.monitor = LiveMonitor(capture=self.capture, source=source)
        self.schedule = Schedule(config.detect_every)
        self.tracker: Tracker | None = None
        self._motion = self._cuts = None
        self._tracking = False
        self.session: RunSession | None = None
        self.frames = 0
        self.result: RunResult | None = None
        self.failure: str | None = None
        self.done = False  # its frames are over: ended, failed, or --max-frames reached
        self.served = 0.0  # when the scheduler last took a frame of it

    def track(self, frame: Frame, detections: Detections | None) -> tuple[Frame, Detections]:
        if not self._tracking:
            self.tracker = self._pipeline.tracker_for(self.source.info)
            self._motion, self._tracking = self._pipeline.camera_motion(self.tracker), True
            self._cuts = self._pipeline.scene_cuts(self.tracker, self.source.live, self.source.info.fps)
        return track(self.tracker, [frame], [detections], self._motion, self.screen, self._cuts)[0]

    @property
    def profiles(self) -> list[StageProfile]:
        return profiles(self._motion, self._cuts)


class SharedStream:
    """Every camera's frames through one detector. Yields `(camera, frame, tracked detections)`, each
    camera's frames in order, and `(camera, None, None)` once a camera's frames are over."""

    def __init__(self, cameras: Sequence[Camera], detector: Detector, wake: threading.Event) -> None:
        self.cameras, self.detector, self._wake = list(cameras), detector, wake
        self._staged = isinstance(detector, StagedDetector)
        self._queue: queue.Queue = queue.Queue()  # bounded by the frames at the model (`_capacity`)
        self._at_model = 0  # submissions whose results are not in yet
        self._freed = threading.Condition()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._schedule, name="vidpipe-scheduler", daemon=True)
        self.profile = StageProfile("detect", capacity=1)

    def __iter__(self) -> Iterator[tuple[Camera, Frame | None, Detections | None]]:
        for camera in self.cameras:
            camera.capture.start()
        self._thread.start()
        try:
            while (item := self._get()) is not _END:
                if item[0] == "over":
                    yield item[1], None, None
                    continue
                _, batch, picked, work, started = item
                waited = time.perf_counter()
                found = spread(self.detector.collect(work) if self._staged and work is not None else work, picked)
                with self._freed:  # the model has room again: the scheduler takes the newest frame(s) now
                    self._at_model -= 1
                    self._freed.notify()
                took = time.perf_counter() - started  # from the submission to the results
                self.profile.busy_s += time.perf_counter() - waited  # this thread's time waiting on the model
                self.profile.items += len(batch)
                for (camera, frame), detections in zip(batch, found):
                    if camera.done:  # stopped (--max-frames) while this frame was at the model
                        continue
                    if detections is not None:
                        camera.monitor.inference_ms.append(1000 * took)
                    yield camera, *camera.track(frame, detections)
            if self._error is not None:
                raise self._error
        finally:
            self.close()

    def _capacity(self) -> tuple[int, int]:
        """(submissions at the model at once, frames per submission): one frame per request where the runtime
        runs requests side by side, else one batch of every waiting frame."""
        requests = getattr(self.detector, "requests", None)
        return (requests, 1) if requests else (1, len(self.cameras))

    def _schedule(self) -> None:
        """Take the waiting frames, oldest first, and start the model on them; note each camera that is over."""
        over: set[str] = set()
        try:
            while not self._stop.is_set():
                slots, per_submission = self._capacity()
                with self._freed:
                    if self._at_model >= slots:
                        self._freed.wait(0.1)
                        continue
                self._wake.clear()  # before looking: a frame that comes after the look sets it again
                for camera in self.cameras:
                    if camera.name not in over and (camera.done or camera.capture.ended):
                        over.add(camera.name)
                        self._queue.put(("over", camera))
                # round robin: the camera served longest ago first (not the oldest frame: a camera whose frame
                # was just replaced by a newer one would lose its turn, and drop again)
                waiting = [(c.served, i) for i, c in enumerate(self.cameras)
                           if c.name not in over and c.capture.waiting_since is not None]
                if not waiting:
                    if len(over) == len(self.cameras):
                        return
                    self._wake.wait(0.1)
                    continue
                batch = [(self.cameras[i], self.cameras[i].capture.take()) for _, i in sorted(waiting)[:per_submission]]
                for camera, _ in batch:
                    camera.served = time.monotonic()
                picked = [camera.schedule.pick([frame])[0] for camera, frame in batch]
                images = [frame.image for (_, frame), p in zip(batch, picked) if p]
                started = time.perf_counter()
                if not images:
                    work: object = None if self._staged else []
                elif self._staged:
                    work = self.detector.submit(self.detector.prepare(images))
                else:
                    work = self.detector.detect(images)
                with self._freed:
                    self._at_model += 1
                self._queue.put(("batch", batch, picked, work, started))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._error = exc
        finally:
            self._queue.put(_END)

    def _get(self):
        while True:
            try:
                return self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return _END

    def close(self) -> None:
        """Stop the scheduler and every reader (before the sources are closed)."""
        self._stop.set()
        self._wake.set()
        for camera in self.cameras:
            camera.capture.stop()
        if self._thread.is_alive():
            self._thread.join(timeout=30)


class CameraRun:
    """A many-camera live run into `out_dir`: `OUT/<camera>/` holds what a one-camera run writes, and
    `OUT/summary.json` (written last) gathers every camera's summary."""

    def __init__(self, pipeline: Pipeline, entries: Sequence[CameraEntry | str], out_dir: Path | None,
                 options: LiveOptions = LiveOptions(), realtime: bool = False, loop: bool = False,
                 viewers: Callable[[str], Sequence[Viewer]] = lambda name: ()) -> None:
        entries = [CameraEntry.of(e) for e in entries]
        if not entries:
            raise InputError("no cameras: give one or more SOURCEs, or a preset with cameras:")
        if (realtime or loop) and not any(plays_a_file(e.source) for e in entries):
            raise InputError("--realtime and --loop are for files and image folders: cameras and streams are live "
                             "already")
        self.pipeline, self.out_dir, self._viewers = pipeline, out_dir, viewers
        self.started = dt.datetime.now(dt.timezone.utc)
        self._clock = time.perf_counter()
        self._lock = contextlib.ExitStack()
        if out_dir is not None:
            self._lock.enter_context(locked(out_dir))  # the whole run's folder; each camera locks its own
        # its brokers' connections, for the whole run: one camera that ends does not say `offline` for all
        self._lock.enter_context(broker.Held(pipeline.config.events))
        self._wake = threading.Event()
        self.cameras: list[Camera] = []
        self.stream: SharedStream | None = None
        try:
            for entry, name in zip(entries, camera_names(entries)):
                file = plays_a_file(entry.source)
                # a stream connects on its reader's thread: a camera that is down holds up no other
                source = open_live(entry.source, options, realtime=realtime and file, loop=loop and file,
                                   opener=lambda spec, name=name: pipeline.open(spec, name), connect_now=False)
                own = {kind: getattr(entry, kind) for kind in VIEW if getattr(entry, kind) is not None}
                config = replace(pipeline.config, cameras=[], **own)  # the run's view where it sets none
                self.cameras.append(Camera(name, entry.source, source, config, pipeline, self._wake))
            self._warm_up()
        except BaseException:
            self.close()
            raise
        self.stream = SharedStream(self.cameras, pipeline.detector, self._wake)

    def _warm_up(self) -> None:
        """Compile the model for each frame size known now, before the first real frame (whose latency would
        show it); a stream's size is known once it connects."""
        sizes = {(c.source.info.height, c.source.info.width) for c in self.cameras if hasattr(c.source, "info")}
        for height, width in sorted(sizes):
            self.pipeline.detector.detect([np.zeros((height, width, 3), np.uint8)])

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self._clock

    def __iter__(self) -> Iterator[tuple[Camera, Frame, Detections]]:
        """Each camera's frames with their tracked detections, written to its outputs as they pass; a camera
        whose frames are over has its outputs finished at once (the others go on)."""
        limit = self.pipeline.config.max_frames
        self._clock = time.perf_counter()  # --duration counts from the first look for frames, not the model's load
        for camera, frame, detections in self.stream:
            if frame is None:
                with stopping.frame_boundary():  # a stop waits until this camera's outputs are finished
                    self._over(camera)
                continue
            with stopping.frame_boundary():  # a stop signal waits until every output has this frame
                self._write(camera, frame, detections)
            yield camera, frame, detections
            if limit is not None and camera.frames >= limit:
                camera.done = True
                self._wake.set()

    def _write(self, camera: Camera, frame: Frame, detections: Detections) -> None:
        camera.frames += 1
        if self.out_dir is None:
            camera.monitor.frame_done(frame, detections)
            return
        if camera.session is None:  # its size and rate are known now (a stream's once it connected)
            camera.source.info = replace(camera.source.info, name=camera.name)  # the tables' video column
            camera.session = RunSession(camera.config, self.pipeline.detector, camera.tracker, camera.source,
                                        self.out_dir / camera.name, self._viewers(camera.name), camera.monitor,
                                        camera.screen)
        camera.session.write(frame, detections)

    def run(self, duration: float | None = None, report: Callable[[int], None] = lambda n: None) -> dict:
        """Drive every camera until all are over, `duration` passes, or a stop arrives, then finish them all
        (see `stopping`: a stop while finishing lets it complete, a second one cuts videos and reports)."""
        status, frames = "complete", iter(self)
        try:
            try:
                for _ in frames:
                    report(1)
                    if duration is not None and self.elapsed_s >= duration:
                        break
            except KeyboardInterrupt:
                status = "stopped"
            finally:
                stopping.begin_finishing(stopped=status != "complete")
                frames.close()
                self.stream.close()
        except BaseException:
            stopping.end_finishing(finished=False)
            self.abort()
            raise
        finished = False
        try:
            summary = self.finish(status)
            finished = True
        finally:
            stopping.end_finishing(finished)
        return summary

    def _over(self, camera: Camera) -> None:
        """A camera's frames are over (its end, a failure, a stream given up, --max-frames): finish it."""
        camera.done = True
        error = camera.capture.error
        if error is not None:
            camera.failure = str(error) or type(error).__name__
            log.warning("camera %s (%s) failed: %s; the other cameras go on", camera.name, camera.spec,
                        camera.failure)
        self._finish(camera, "failed" if error is not None else "complete")

    def _finish(self, camera: Camera, status: str) -> None:
        if camera.session is None or camera.result is not None:
            return
        session, camera.session = camera.session, None
        camera.result = finish_run(session, status, [*camera.profiles, self.stream.profile])
        if camera.result.summary.status == "gave_up":  # its reason, as a camera that failed has its error
            camera.failure = _why_given_up(camera.source)

    def finish(self, status: str) -> dict:
        """Finish every camera still running (as `status`), then write OUT/summary.json; the gathered summary.
        Their events still queued drain side by side, by one deadline: N cameras whose webhooks hang stop
        within one `CLOSE_WAIT_S`, not one per camera."""
        try:
            deadline = time.monotonic() + CLOSE_WAIT_S
            for camera in self.cameras:
                if camera.session is not None and camera.session.publisher is not None:
                    camera.session.publisher.hurry(deadline)
            for camera in self.cameras:
                self._finish(camera, status)
            summary = self.summary(status)
            if self.out_dir is not None:
                write_atomic(self.out_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
            return summary
        finally:
            self.close()

    def abort(self) -> None:
        for camera in self.cameras:
            if camera.session is not None:
                camera.session.abort()
                camera.session = None
        self.close()

    def summary(self, status: str) -> dict:
        wall = self.elapsed_s
        cameras = {}
        for camera in self.cameras:
            s = camera.result.summary if camera.result else None
            live = s.live if s else None
            cameras[camera.name] = {
                "source": camera.spec,
                "status": s.status if s else ("failed" if camera.failure else "no frames"),
                "error": camera.failure,
                "out": camera.name if s else None,
                "frames_processed": s.counts.frames_processed if s else 0,
                "frames_dropped": live.frames_dropped if live else 0,
                "processed_fps": round(s.counts.frames_processed / wall, 2) if s and wall > 0 else 0.0,
                "latency_ms": asdict(live.latency_ms) if live and live.latency_ms else None,
                "summary": s.to_dict() if s else None,
            }
        frames = sum(c["frames_processed"] for c in cameras.values())
        detector = next((c["summary"]["detector"] for c in cameras.values() if c["summary"]), None)
        return {"status": status, "started_at": self.started.isoformat(timespec="seconds"),
                "wall_time_s": round(wall, 3), "frames_processed": frames,
                "processed_fps": round(frames / wall, 2) if wall > 0 else None, "detector": detector,
                "failed": [name for name, c in cameras.items() if c["status"] in ("failed", "gave_up")],
                "cameras": cameras}

    def stats(self) -> dict:
        """The live page's figures, per camera."""
        out = {}
        for camera in self.cameras:
            snapshot = camera.monitor.snapshot()
            if camera.failure:
                snapshot["source"]["state"] = "failed"
            out[camera.name] = snapshot
        return {"cameras": out}

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()  # the scheduler stops
        for camera in self.cameras:
            camera.capture.stop()  # the reader is out of the decoder before the source closes
            camera.source.close()
        self._lock.close()


def _why_given_up(source: Source) -> str:
    """A stream that went away and did not come back: why it was lost, and how reconnecting ended."""
    gap = source.gaps[-1]
    last = getattr(source, "last_error", None)
    return (f"lost ({gap.reason}); gave up after {gap.attempts} reconnect attempt(s)"
            + (f", the last: {last}" if last else ""))


def live_many(sources: Sequence[str | CameraEntry], out_dir: str | Path | None = None, *,
              pipeline: Pipeline | PipelineConfig | None = None, realtime: bool = False, loop: bool = False,
              options: LiveOptions = LiveOptions()) -> Iterator[tuple[str, Frame, Detections]]:
    """`(camera name, frame, tracked detections)` from several live sources sharing one detector, for your
    own code: each camera's frames in order, the cameras in turn. With `out_dir`, each camera's outputs are
    written to `out_dir/<camera>/` as they go by and finished when it ends, or when the loop stops."""
    runner = pipeline if isinstance(pipeline, Pipeline) else Pipeline(pipeline)
    run = CameraRun(runner, sources, Path(out_dir) if out_dir is not None else None, options, realtime, loop)
    frames, status = iter(run), "complete"
    try:
        for camera, frame, detections in frames:
            yield camera.name, frame, detections
    except GeneratorExit:  # the caller's loop stopped early: finish what it saw
        status = "stopped"
    except BaseException:
        frames.close()
        run.abort()
        raise
    frames.close()
    run.finish(status)

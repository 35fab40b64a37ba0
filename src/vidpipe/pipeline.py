"""The pipeline: source -> detector (in batches) -> tracker -> outputs.

A `Pipeline` loads its detector once and runs any number of inputs. For each it picks a frame stream
(`streams`: the staged engine, the sequential loop, or the live mailbox) and a run session (`session`: the
outputs and the summary), and drives the one into the other until the input ends or a stop arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import cv2
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from . import stopping
from .config import PipelineConfig
from .detections import Detections
from .detectors import Detector, load_detector
from .engine import StageProfile
from .errors import InputError
from .frames import Frame, VideoInfo
from .live import LiveMonitor, Replay
from .screen import Screen
from .session import RunResult, RunSession
from .sinks import Viewer
from .sources import Sampling, Source, open_source
from .stopping import frame_boundary
from .streams import FrameStream, LiveStream, SequentialStream, StagedStream
from .tracking import NO_TRACKER, CameraMotion, SceneCuts, Tracker, create_tracker, tracker_config
from .tracking.cuts import scene_cuts

log = logging.getLogger("vidpipe")
Progress = bool | Callable[[int], None]  # a bar (True), nothing (False), or told how many frames were just done


class Pipeline:
    """Detect, track, draw and write; the detector is loaded once and reused for every input."""

    def __init__(self, config: PipelineConfig | None = None, detector: Detector | None = None) -> None:
        self.config = config or PipelineConfig()
        self.detector = detector or load_detector(self.config.detector, self.config.detector_settings())
        self.screen_for(self.config)  # a filter naming a class the model lacks fails here, before any input
        self._enable_appearance()
        if self.config.threads:
            cv2.setNumThreads(self.config.threads)

    def _enable_appearance(self) -> None:
        """Where the tracker compares appearance, the detector adds each box's embedding from its own features;
        a detector or runtime that cannot leaves tracking to motion, with one line saying so."""
        cfg = self.config
        if cfg.tracker == NO_TRACKER or getattr(tracker_config(cfg.tracker, cfg.tracker_params()), "appearance",
                                                "off") == "off":
            return
        enable = getattr(self.detector, "enable_appearance", None)
        reason = enable() if enable else f"the {cfg.detector} detector does not expose its features"
        if reason:
            log.warning("appearance: off, tracking by motion only (%s)", reason)

    def open(self, input: str | Path, name: str | None = None) -> Source:
        """The input as a source, with this pipeline's frame selection; `name` replaces its name in tables."""
        cfg = self.config
        source = open_source(input, cfg.sampling(), cfg.sequence_fps, threads=cfg.threads)
        if name:
            source.info = replace(source.info, name=name)
        return source

    def run(self, input: str | Path, out_dir: str | Path | None = None, progress: Progress = True,
            name: str | None = None, realtime: bool = False) -> RunResult:
        """Process one input; outputs go to `out_dir` (default `runs/<input name>/`).

        `name` replaces the input's name (the file stem) in tables, e.g. a corpus's video id. `realtime` plays
        it at its own rate, as a camera would give it (a live run: the newest frame is processed, the rest
        dropped and counted).
        """
        source = Replay(lambda: self.open(input, name), realtime=True) if realtime else self.open(input, name)
        try:
            return self.process(source, Path(out_dir) if out_dir else Path("runs") / source.info.name, progress)
        finally:
            source.close()

    def process(self, source: Source, out_dir: Path, progress: Progress = True, viewers: Sequence[Viewer] = (),
                duration: float | None = None, monitor: LiveMonitor | None = None) -> RunResult:
        """Run an opened source to its end (or `duration` seconds, or Ctrl-C / SIGTERM) into `out_dir`.

        `viewers` (preview window, web page) get every annotated frame; `monitor` gathers the live figures
        they show (made here for live sources and `--overlay` when not given).
        """
        if monitor is None and (source.live or self.config.overlay):
            monitor = LiveMonitor()
        if monitor is not None:
            monitor.source = source
        tracker, screen = self.tracker_for(source.info), self.screen_for(self.config)
        stream = self._stream(source, tracker, monitor, screen)
        try:
            session = RunSession(self.config, self.detector, tracker, source, out_dir, viewers, monitor, screen)
        except BaseException:
            stream.close()
            raise
        total = None if source.live else self.config.sampling().estimate(source.info)
        # vidpipe's messages (a one-time export, a lost stream) print on lines of their own, above the bar.
        with logging_redirect_tqdm(loggers=[log]), tqdm(total=total, unit="frame", desc=source.info.name,
                                                        disable=progress is not True, dynamic_ncols=True,
                                                        mininterval=0.5) as bar:
            try:
                status = self._drive(stream, session, progress if callable(progress) else bar.update, duration)
                if session.stats.frames == 0:
                    if status != "complete":  # stopped before the first frame: nothing to finish
                        raise KeyboardInterrupt
                    raise InputError(_no_frames_message(source.info, self.config.sampling()))
            except BaseException:
                stopping.end_finishing(finished=False)
                session.abort()
                raise
        finished = False
        try:
            result = finish_run(session, status, stream.profiles)
            finished = True
        finally:
            received = stopping.end_finishing(finished)
        return replace(result, stop_received=received)

    def stream(self, input: str | Path | Source, out_dir: str | Path | None = None,
               viewers: Sequence[Viewer] = ()) -> Iterator[tuple[Frame, Detections]]:
        """The tracked `(frame, detections)` pairs of `input`, through the staged engine, for your own code.

        With `out_dir`, the usual outputs are written as the pairs go by, and finished (summary included)
        when the input ends; a loop that stops early finishes them as `interrupted`.
        """
        source = self.open(input) if isinstance(input, (str, Path)) else input
        tracker, screen = self.tracker_for(source.info), self.screen_for(self.config)
        stream = self._stream(source, tracker, None, screen)
        session = (RunSession(self.config, self.detector, tracker, source, Path(out_dir), viewers, None, screen)
                   if out_dir else None)
        status = "complete"
        try:
            for frame, detections in stream:
                if session:
                    session.write(frame, detections)
                yield frame, detections
        except GeneratorExit:  # the caller's loop stopped early: finish what it saw
            status = "interrupted"
            raise
        except BaseException:
            status = "failed"
            raise
        finally:
            stream.close()
            if session and status != "failed" and session.stats.frames:
                session.finish(status, stream.profiles)
            elif session:
                session.abort()
            if source is not input:
                source.close()

    def frames(self, source: Iterable[Frame], tracker: Tracker | None = None) -> Iterator[tuple[Frame, Detections]]:
        """Each frame of any iterable with its detections (tracked when given a tracker, which then also
        predicts the frames `detect_every` skips and follows the camera's motion); one thread. Cuts between
        shots are looked for under `auto` only where the iterable is a Source that is not live."""
        every = self.config.detect_every if tracker is not None else 1
        info = getattr(source, "info", None)
        return iter(SequentialStream(source, self.detector, tracker, self.config.batch_size, every,
                                     self.camera_motion(tracker), self.screen_for(self.config),
                                     self.scene_cuts(tracker, getattr(source, "live", True),
                                                     getattr(info, "fps", 0.0))))

    def tracker_for(self, info: VideoInfo) -> Tracker | None:
        """A fresh tracker for one input, its rows carrying their track's voted class and whether it is an
        object yet (None for `none`)."""
        return create_tracker(self.config.tracker, info.fps, self.config.tracker_params(), vote=True,
                              merge_iou=self.config.merge_iou, confirm=self.config.confirm_rule())

    def screen_for(self, config: PipelineConfig) -> Screen:
        """The masks and class filters of one input (or camera), with this detector's class names."""
        return Screen(config.masks, config.filters, self.detector.names)

    def _stream(self, source: Source, tracker: Tracker | None, monitor: LiveMonitor | None,
                screen: Screen) -> FrameStream:
        """The frame stream for this source, chosen once."""
        every, motion = self.config.detect_every, self.camera_motion(tracker)
        cuts = self.scene_cuts(tracker, source.live, source.info.fps)
        if source.live:
            return LiveStream(source, self.detector, tracker, monitor or LiveMonitor(), every, motion, screen, cuts)
        kind = SequentialStream if self.config.engine == "sequential" else StagedStream
        return kind(source, self.detector, tracker, self.config.batch_size, every, motion, screen, cuts)

    def camera_motion(self, tracker: Tracker | None) -> CameraMotion | None:
        """The camera-motion estimate for one input's tracks (`--camera-motion`), or None."""
        mode = self.config.camera_motion
        return CameraMotion(mode) if tracker is not None and mode != "off" else None

    def scene_cuts(self, tracker: Tracker | None, live: bool, fps: float) -> SceneCuts | None:
        """The cut detector that ends one input's tracks where its video cuts to another shot (`--scene-cuts`),
        or None."""
        return scene_cuts(self.config.scene_cuts, live, fps) if tracker is not None else None

    def _drive(self, stream: FrameStream, session: RunSession, report: Callable[[int], None],
               duration: float | None) -> str:
        """Feed the stream into the session until it ends, `duration` passes, or a stop signal arrives. From
        then on the run is finishing: a later stop no longer raises (see `stopping`)."""
        live, limit = session.source.live, self.config.max_frames
        status = "complete"
        try:
            for frame, detections in stream:
                with frame_boundary():  # a stop signal waits until every output has this frame
                    session.write(frame, detections)
                    report(1)
                if duration is not None and session.elapsed_s >= duration:
                    break
                if live and limit is not None and session.stats.frames >= limit:
                    break
        except KeyboardInterrupt:
            status = "stopped" if live else "interrupted"  # finish what was processed into valid files
        finally:
            stopping.begin_finishing(stopped=status != "complete")
            stream.close()  # stops the engine's (or the capture's) threads
        return status


def finish_run(session: RunSession, status: str, profiles: Sequence[StageProfile] = ()) -> RunResult:
    """Finish one run's outputs, saying what its source lost: a live stream that did not come back ends as
    `gave_up`; damaged frames and frames left unread by a stop are reported."""
    source = session.source
    if status == "complete" and source.live and source.gaps and source.gaps[-1].end_s is None:
        status = "gave_up"  # the stream went away and did not come back within --max-reconnects
    if source.lost_frames:
        log.warning("%s: %d frame(s) could not be decoded (damaged or truncated input); processed %d",
                    source.info.uri, source.lost_frames, session.stats.frames)
    if source.unread_frames and status != "complete":
        log.info("%s: stopped with %d frame(s) of the input not read", source.info.uri, source.unread_frames)
    return session.finish(status, profiles)


def run(input: str | Path, out_dir: str | Path | None = None, *, pipeline: str | Path | None = None,
        progress: bool = False, **options) -> RunResult:
    """One-call use from Python: `vidpipe.run("clip.mp4", classes=["person"])` (options as on the CLI)."""
    return Pipeline(PipelineConfig.load(pipeline, **options)).run(input, out_dir, progress=progress)


def _no_frames_message(info: VideoInfo, sampling: Sampling) -> str:
    if sampling.start or sampling.end is not None:
        return f"{info.uri}: no frames in the selected time range ({sampling.start}s to {sampling.end or 'end'})"
    return f"{info.uri} contains no decodable video frames"

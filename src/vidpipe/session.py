"""A run session: one input's outputs, the figures gathered as its frames pass, and its summary.

The session owns everything a run leaves behind. `write(frame, detections)` is the per-frame step (draw
once, hand the picture to the video and the viewers, the record to the tables, count); `finish()` closes
every output and writes `summary.json` last; `abort()` discards the partial files. An output is one more
object here, not an edit of the loop that feeds it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from . import stopping
from .analytics import Analytics, zone_column
from .annotate import Annotator
from .api import RecentEvents
from .clips import FOLDER as CLIPS
from .clips import ClipRecorder
from .config import PipelineConfig
from .detections import Detections
from .detectors import Detector, resolve_classes
from .engine import StageProfile
from .errors import InputError, VidpipeError
from .events import Publisher
from .files import locked, write_atomic
from .frames import Frame, VideoInfo
from .homeassistant import Discovery
from .inview import InView
from .lifecycle import Lifecycle
from .live import LiveMonitor
from .report import Thumbnails, write_run_report
from .screen import Screen
from .segments import presence_table
from .sinks import (
    TABLE_FORMATS,
    DetectionTableSink,
    FrameTableSink,
    MotSink,
    Sink,
    TrackTableSink,
    VideoSink,
    Viewer,
    read_arrow,
    write_events,
    write_table,
    write_visits,
)
from .sources import Source
from .summary import Counts, DetectorFacts, RunSummary, StageFigures, TrackerFacts, VideoOutput
from .tracking import NO_TRACKER, Tracker
from .tracking.link import TrackletLog

log = logging.getLogger("vidpipe")
OUTPUT_NAMES = {
    "video": "annotated.mp4",
    "detections": "detections",
    "frames": "frames",
    "tracks": "tracks",
    "mot": "tracks.txt",
    "events": "events",
    "visits": "visits",
    "presence": "presence",
    "heatmap": "heatmap.png",
    "report": "report.html",
    "summary": "summary.json",
}


@dataclass
class RunResult:
    out_dir: Path
    outputs: dict[str, Path]
    summary: RunSummary
    stop_received: bool = False  # a stop arrived while the outputs were being finished (they were finished)

    @property
    def interrupted(self) -> bool:
        return self.summary.interrupted


def open_sinks(config: PipelineConfig, info: VideoInfo, out_dir: Path, names: Sequence[str],
               clock_origin: dt.datetime | None = None, analytics: Analytics | None = None,
               object_ids: Mapping[int, str] | None = None, links: Mapping[int, int] | None = None) -> dict[str, Sink]:
    """The file outputs `config` asks for, by key; `clock_origin` (live runs) adds wall-clock times to the
    tables, `analytics` the zones' occupancy columns, `object_ids` (each object's lifecycle id by track) the
    tracks table's `object_id`, `links` (filled when the run ends: {track: linked id}) the tables' `linked_id`
    and tracks.txt's ids. If one cannot be opened, those already opened are discarded."""
    sinks: dict[str, Sink] = {}
    try:
        if config.video:
            sinks["video"] = VideoSink(
                out_dir / OUTPUT_NAMES["video"], info, preset=config.video_preset, crf=config.video_crf,
                threads=config.threads, copy_audio=clock_origin is None,
                audio_to_end=config.end is None and config.max_frames is None,
                starts_at=config.start if clock_origin is None else None,  # live: its first frame is 0
            )
        target = config.slotted  # each frame stands for a sampling slot: say which
        sinks["detections"] = DetectionTableSink(
            out_dir / f"{OUTPUT_NAMES['detections']}.{config.table_format}", info.name, config.table_format,
            clock_origin=clock_origin, target=target, links=links,
        )
        class_ids, interest = frame_classes(config, names)
        sinks["frames"] = FrameTableSink(
            out_dir / f"{OUTPUT_NAMES['frames']}.{config.table_format}", info.name, names, config.table_format,
            classes=class_ids, interest=interest, top_k=config.top_k, clock_origin=clock_origin,
            extra=analytics.occupancy if analytics else None, extra_columns=zone_columns(config), target=target,
        )
        if config.tracker != NO_TRACKER:
            sinks["tracks"] = TrackTableSink(out_dir / f"{OUTPUT_NAMES['tracks']}.{config.table_format}", info.name,
                                             config.table_format, object_ids, links)
        if config.mot:
            sinks["mot"] = MotSink(out_dir / OUTPUT_NAMES["mot"], links)
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    return sinks


def zone_columns(config: PipelineConfig) -> list[str]:
    """The frames table's occupancy columns, one per zone (zones count tracks: none without a tracker)."""
    return [zone_column(zone.name) for zone in config.zones] if config.tracker != NO_TRACKER else []


def writes_presence(config: PipelineConfig) -> bool:
    """A run that samples (`--sample-fps`, `--stride`; the yt8m preset's 1 fps) writes presence.parquet, the
    per-frame presence of every class that YouTube-8M-style work joins on, as a corpus does for every video."""
    return config.sample_fps is not None or config.stride > 1


def frame_classes(config: PipelineConfig, names: Sequence[str]) -> tuple[list[int], list[int]]:
    """The per-frame table's classes: counted (the run's `--classes`, else every class the model knows) and
    of interest, with a `p_any_` column (the `--classes`, else person)."""
    class_ids = resolve_classes(config.classes, names)
    interest = class_ids if class_ids is not None else [i for i, n in enumerate(names) if n == "person"]
    return (list(range(len(names))) if class_ids is None else class_ids), interest


class RunStats:
    """Counts gathered while frames flow, for the summary."""

    def __init__(self) -> None:
        self.frames = 0
        self.first_frame: int | None = None
        self.last_frame: int | None = None
        self.per_class: Counter = Counter()
        self.track_class: dict[int, str] = {}  # each object's voted class, as of its latest frame
        self.tracks: set[int] = set()  # every track, objects or not

    def add(self, frame: Frame, detections: Detections) -> None:
        self.frames += 1
        if self.first_frame is None:
            self.first_frame = frame.index
        self.last_frame = frame.index
        self.per_class.update(detections.class_name.tolist())
        self.tracks.update(detections.track_id[detections.is_tracked].tolist())
        objects = detections.is_object
        self.track_class.update(zip(detections.track_id[objects].tolist(), detections.track_class_name[objects]))

    def counts(self, links: Mapping[int, int] | None = None) -> Counts:
        """An object (a confirmed track) counts once, for its voted class (the same class the tracks table and
        the video show); tracks never confirmed are no objects. With `links` ({track: linked id}, the offline
        linking's), the tracks of one object count once, for the class of its first confirmed track, once any
        of them was confirmed; `unconfirmed_tracks` are those in no object."""
        links = links or {}
        objects: dict[int, str] = {}
        for track, name in sorted(self.track_class.items()):
            objects.setdefault(links.get(track, track), name)
        tracks_per_class = Counter(objects.values())
        in_objects = sum(links.get(track, track) in objects for track in self.tracks)
        return Counts(self.frames, self.first_frame, self.last_frame, dict(self.per_class.most_common()),
                      dict(tracks_per_class.most_common()), len(self.tracks) - in_objects)


class RunSession:
    """The outputs of one run into `out_dir`: files (`sinks`), viewers, live figures, stats and summary."""

    def __init__(self, config: PipelineConfig, detector: Detector, tracker: Tracker | None, source: Source,
                 out_dir: Path, viewers: Sequence[Viewer] = (), monitor: LiveMonitor | None = None,
                 screen: Screen | None = None) -> None:
        self.config, self.detector, self.tracker, self.source = config, detector, tracker, source
        if source.live and tracker and config.link == "offline":
            raise InputError("--link offline links a file's tracks once it has ended: not for live sources (a "
                             "camera, a stream); use --link online")
        self.screen = screen  # the masks and filters the stream applies: drawn, and counted in the summary
        self.out_dir = out_dir
        self.summary_path = out_dir / OUTPUT_NAMES["summary"]
        self.started = dt.datetime.now(dt.timezone.utc)
        self._lock = contextlib.ExitStack()  # the out folder is this run's until finish() or abort()
        self._lock.enter_context(locked(out_dir))
        info = source.info
        # lines, zones and heatmaps follow tracks: an untracked run (`--tracker none`) has none
        self.analytics = Analytics.build(config.lines, config.zones, info.width, info.height, config.anchor,
                                         config.zone_hysteresis_s, config.line_hysteresis_s,
                                         config.heatmap) if tracker else Analytics()
        origin = self.started
        clock = ((lambda t: origin + dt.timedelta(seconds=t)) if source.live
                 else (lambda t: dt.datetime.now(dt.timezone.utc)))  # a file's events happen as they are seen
        # each object's new, update and end, and its id (tracks.parquet, events)
        self.objects = Lifecycle(info.name, clock, tracker.forget_s) if tracker else None
        # offline linking (files): every track summed up as it passes, linked when the input has ended
        self.link = config.link if tracker else "off"
        self.tracklets = TrackletLog() if self.link == "offline" else None
        self.links: dict[int, int] = {}  # {track: linked id}, read by the tables when they close
        try:
            with _writing(out_dir):
                for old in previous_outputs(out_dir):  # a new run's outputs never sit beside an old run's
                    old.unlink(missing_ok=True)
                self.sinks = open_sinks(config, info, out_dir, detector.names,
                                        clock_origin=self.started if source.live else None, analytics=self.analytics,
                                        object_ids=self.objects.ids if self.objects else None, links=self.links)
        except BaseException:
            self._lock.close()
            raise
        # --clips: each object's video, cut from a ring of recent frames
        self.clips = ClipRecorder(out_dir, info, *config.clips, tracker.forget_s, config.video_preset,
                                  config.video_crf) if config.clips and tracker else None
        self.viewers = list(viewers)
        self.monitor = monitor  # live figures: fps, latency, counts (live runs and --overlay)
        if monitor:
            monitor.analytics = self.analytics  # the live page shows the lines' and zones' counts
        self.annotator = Annotator(trails=config.trails, labels=config.labels, color_by=config.color_by,
                                   overlay=monitor.overlay_lines if monitor and config.overlay else None,
                                   underlay=self._underlay,
                                   topmost=self.analytics.draw_names if self.analytics else None,
                                   anchor=config.anchor)
        self.stats = RunStats()
        # crops of the tracks' best detections, for the report (untracked runs have no tracks to show)
        self.thumbnails = Thumbnails() if config.report and tracker is not None else None
        self.profile = StageProfile("write")
        self._clock = time.perf_counter()
        self._drawn: list = [sink for key, sink in self.sinks.items() if key == "video"] + self.viewers
        self._tables = [sink for key, sink in self.sinks.items() if key != "video"]
        self._size = (info.width, info.height)  # of the frames now arriving
        self.size_changes: list[dict] = []
        self._unfit: set[str] = set()  # lines and zones in pixels, warned about once
        self.publisher: Publisher | None = None  # events out as they happen (--events, --snapshots)
        recent = next((v.recent for v in self.viewers if getattr(v, "recent", None)), None)  # the server's API
        if config.events or config.snapshots or recent is not None:
            try:
                self.publisher = self._publisher(clock, recent)
            except BaseException:
                self.abort()
                raise
        self._published = 0  # the analytics' events already sent
        self._latest: tuple[Frame, Detections] | None = None

    def _underlay(self, canvas: np.ndarray) -> None:
        """Under the boxes: the masks (hatched), then the lines and zones."""
        if self.screen and self.screen.masks:
            self.screen.draw(canvas)
        if self.analytics:
            self.analytics.draw(canvas)

    def _publisher(self, clock: Callable[[float], dt.datetime], recent: RecentEvents | None) -> Publisher:
        """Events out (--events, --snapshots), with what is in view now for a broker and, with --ha-discovery,
        Home Assistant's configs; the lines' totals go out at once (zero), so none reads a previous run's."""
        config, analytics = self.config, self.analytics
        served = next((v.outputs_url for v in self.viewers if getattr(v, "outputs_url", None)), None)
        ids = resolve_classes(config.classes, self.detector.names)  # `car` or `2`: the model's names
        in_view = InView(None if ids is None else [self.detector.names[i] for i in ids],
                         {zone.name: zone.classes for zone in analytics.zones})
        discovery = Discovery(tuple(line.name for line in analytics.lines), config.snapshots) \
            if config.ha_discovery else None
        publisher = Publisher(config.events, self.source.info.name, self.out_dir, config.snapshots, clock, served,
                              in_view, discovery, recent, self.objects.ids if self.objects else None)
        publisher.counts({**analytics.live_counts(), "objects": {}})
        return publisher

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self._clock

    def write(self, frame: Frame, detections: Detections) -> None:
        """One frame into every output: drawn once for the video and the viewers, recorded in the tables."""
        start = time.perf_counter()
        if frame.image.shape[1::-1] != self._size:
            self._resized(frame)
        if self.analytics:  # first: the frames table and the picture show this frame's counts
            self.analytics.update(frame, detections)
        lifecycle = self.objects.update(frame, detections, self.analytics.zones_of()) if self.objects else []
        self.analytics.drop([message["after"]["track_id"] for message in lifecycle if message["kind"] == "end"])
        annotated = self.clips is not None and self.config.clips_annotated
        with _writing(self.out_dir):
            shown = replace(frame, image=self.annotator.annotate(frame.image, detections)) \
                if self._drawn or annotated else frame
            for output in self._drawn:
                output.write(shown, detections)
            if self.clips:  # before the lifecycle goes out: its messages name their clips
                self.clips.write(frame, shown.image if annotated else frame.image, lifecycle)
            for sink in self._tables:
                sink.write(frame, detections)
            if self.thumbnails:
                self.thumbnails.write(frame, detections)
        if self.tracklets:
            self.tracklets.add(frame.time, detections, self._size)
        self.profile.busy_s += time.perf_counter() - start
        if self.monitor:
            self.monitor.frame_done(frame, detections)
        self.stats.add(frame, detections)
        if self.publisher:
            self._latest = (frame, detections)
            self._publish(frame, detections)
            self.publisher.lifecycle(lifecycle)  # after this frame's line and zone events: an exit before its end
            self.publisher.observe(frame, detections, {zone.name: zone.occupancy for zone in self.analytics.zones})

    def _publish(self, frame: Frame, detections: Detections) -> None:
        """The events confirmed since the last call, out to --events (and --snapshots)."""
        new = self.analytics.events[self._published:]
        self._published = len(self.analytics.events)
        if new:
            totals = {**self.analytics.live_counts(), "objects": self.stats.counts().tracks_per_class}
            with _writing(self.out_dir):
                self.publisher.publish(frame, detections, new, totals)

    def _resized(self, frame: Frame) -> None:
        """The stream changed its frame size (a camera's new resolution): boxes stay in each frame's own pixels,
        the video keeps its size (the new frames are scaled into it), lines and zones given as fractions of the
        frame follow, and the summary records the change."""
        (old_w, old_h), (width, height) = self._size, frame.image.shape[1::-1]
        self._size = (width, height)
        fixed = self.analytics.resize(width, height)
        if self.source.info.kind in ("images", "image"):
            return  # a folder of photos has a size per image: nothing to report
        self.size_changes.append({"frame": frame.index, "time_s": round(frame.time, 3), "width": width,
                                  "height": height})
        log.warning("%s: the frame size changed from %dx%d to %dx%d at frame %d (%.2f s); boxes in the tables are "
                    "in each frame's own pixels (summary.json: input.size_changes)", self.source.info.name, old_w,
                    old_h, width, height, frame.index, frame.time)
        for name in fixed:
            if name not in self._unfit:
                self._unfit.add(name)
                log.warning("%r is given in pixels and may no longer fit the %dx%d frames (give it as fractions of "
                            "the frame to follow size changes)", name, width, height)

    def finish(self, status: str, profiles: Sequence[StageProfile] = ()) -> RunResult:
        """Close every output under its final name, then write the summary (last: its presence means done).

        The tables come first and always finish; a second stop (`stopping.cut_short`) may cut the video,
        the heatmap and the report, which the summary then lists under `missing_outputs`."""
        video = self.sinks.get("video")
        if video and status != "complete":
            video.end_audio_at_last_frame()  # the sound of frames never processed would run past the picture
        outputs: dict[str, Path] = {}
        missing: list[str] = []
        try:
            if self.tracklets:  # before any output closes: the tables, the events and the counts use the links
                self.links.update(self.tracklets.link(cuts=self.tracker.cuts))
            with _writing(self.out_dir):
                for key, sink in self.sinks.items():
                    if key != "video":
                        sink.close()
                        outputs[key] = sink.path
                if writes_presence(self.config):
                    outputs["presence"] = self._write_presence(outputs["detections"])
                for viewer in self.viewers:
                    viewer.close()
                outputs.update(self._write_events())
                ends = self.objects.close() if self.objects else []
                if self.clips:
                    self.clips.close(ends)
                if self.publisher:
                    self.publisher.lifecycle(ends)  # after its last crossing or zone exit
                events_out = self.publisher.close() if self.publisher else []
                for folder in ("snapshots", CLIPS):
                    if (self.out_dir / folder).is_dir():
                        outputs[folder] = self.out_dir / folder
                if video and self._cuttable("video", video.close, video.abort, missing):
                    outputs["video"] = video.path
                if self.analytics.heatmap and self._cuttable("heatmap", self._write_heatmap, None, missing):
                    outputs["heatmap"] = self.out_dir / OUTPUT_NAMES["heatmap"]
        except BaseException:
            self.abort()
            raise
        wall = self.elapsed_s
        report = self.out_dir / OUTPUT_NAMES["report"] if self.config.report else None
        summary = RunSummary(
            status="partial" if status == "complete" and self.source.lost_frames else status,
            input=self.source.info,
            detector=self._detector_facts(),
            tracker=TrackerFacts(self.tracker.name, self.tracker.params(), self.config.merge_iou, self.link,
                                 len(self.links)) if self.tracker else None,
            sampling=self.config.sampling(),
            counts=self.stats.counts(self.links),
            source_frames_lost=self.source.lost_frames,
            source_frames_unread=self.source.unread_frames,
            frames_decoded=getattr(self.source, "decoded_frames", None),  # live sources do not count it
            wall_time_s=round(wall, 3),
            started_at=self.started.isoformat(timespec="seconds"),
            engine=self.config.engine,
            stages=tuple(_figures(p, wall, self.stats.frames) for p in [*profiles, self.profile]),
            outputs={key: path.name for key, path in {**outputs, **({"report": report} if report else {})}.items()},
            missing_outputs=tuple(missing),
            video_output=VideoOutput(video.codec, video.width, video.height) if "video" in outputs else None,
            live=self.monitor.figures(self.source) if self.source.live and self.monitor else None,
            lines={line.name: line.figures() for line in self.analytics.lines} or None,
            zones={zone.name: zone.figures() for zone in self.analytics.zones} or None,
            size_changes=tuple(self.size_changes),
            scene_cuts=tuple(round(t, 3) for t in self.tracker.cuts) if self.tracker else (),
            regions=tuple(self.analytics.describe()),
            events_out=tuple(events_out),
            filtered=self.screen.figures() if self.screen else None,
        )
        try:
            with _writing(self.out_dir):
                if report is not None:
                    summary = self._write_report(summary, {**outputs, "report": report}, wall)
                    if "report" in summary.outputs:
                        outputs["report"] = report
                outputs["summary"] = summary.write(self.summary_path)  # last: its presence means done
        finally:
            self._lock.close()
        return RunResult(self.out_dir, outputs, summary)

    @staticmethod
    def _cuttable(key: str, write: Callable[[], object], discard: Callable[[], None] | None,
                  missing: list[str]) -> bool:
        """Run one piece of optional finishing work that a second stop may cut; False (and `key` noted as
        missing) when it was cut."""
        try:
            with stopping.cuttable():
                write()
            return True
        except KeyboardInterrupt:
            if discard:
                discard()
            missing.append(key)
            return False

    def _write_events(self) -> dict[str, Path]:
        """events.parquet (lines and zones) and visits.parquet (zones), where configured; the last events (the
        input's end closes visits and confirms crossings) go out to --events too."""
        if not (self.analytics.lines or self.analytics.zones):
            return {}
        self.analytics.close()
        if self.publisher and self._latest:
            self._publish(*self._latest)
        self.analytics.merge_linked(self.links)  # after the last events out: those keep the online ids
        name, fmt = self.source.info.name, self.config.table_format
        outputs = {"events": write_events(self.out_dir / f"{OUTPUT_NAMES['events']}.{fmt}", name,
                                          self.analytics.events, fmt, self.links)}
        if self.analytics.zones:
            outputs["visits"] = write_visits(self.out_dir / f"{OUTPUT_NAMES['visits']}.{fmt}", name,
                                             self.analytics.visits(), fmt)
        return outputs

    def _write_presence(self, detections: Path) -> Path:
        """presence.<format>, from the finished detection table."""
        table = read_arrow(detections, self.sinks["detections"].schema).to_pandas()
        path = self.out_dir / f"{OUTPUT_NAMES['presence']}.{self.config.table_format}"
        write_table(presence_table(self.source.info.name, table), path, self.config.table_format)
        return path

    def _write_heatmap(self) -> None:
        ok, png = cv2.imencode(".png", self.analytics.heatmap.render())
        if not ok:
            raise VidpipeError("OpenCV could not encode heatmap.png")
        write_atomic(self.out_dir / OUTPUT_NAMES["heatmap"], png.tobytes())

    def _write_report(self, summary: RunSummary, outputs: dict[str, Path], wall: float) -> RunSummary:
        """report.html from the finished tables and the kept crops; its cost is a stage of the summary. A
        second stop may cut it: the summary then lists it as missing."""
        start = time.perf_counter()
        missing = list(summary.missing_outputs)
        if not self._cuttable("report", lambda: write_run_report(outputs["report"], summary, outputs, self.thumbnails,
                                                                 outputs.get("video"), self.analytics.picture()),
                              None, missing):
            return replace(summary, outputs={k: v for k, v in summary.outputs.items() if k != "report"},
                           missing_outputs=tuple(missing))
        report = StageProfile("report", items=1, busy_s=time.perf_counter() - start)
        return replace(summary, stages=(*summary.stages, _figures(report, wall, self.stats.frames)))

    def abort(self) -> None:
        """Discard every partial output."""
        if self.publisher:
            self.publisher.close(0)
        if self.clips:
            self.clips.abort()
        for sink in self.sinks.values():
            sink.abort()
        for viewer in self.viewers:
            viewer.close()
        self._lock.close()

    def _detector_facts(self) -> DetectorFacts:
        cfg = self.config
        return DetectorFacts(name=cfg.detector, model=self.detector.model, classes=cfg.classes,
                             conf=cfg.detection_conf(), iou=cfg.iou, device=cfg.device,
                             imgsz=getattr(self.detector, "imgsz", cfg.imgsz),  # as the backend rounded it
                             batch_size=cfg.batch_size, runtime=self.detector.runtime,
                             precision=self.detector.precision, names=list(self.detector.names))


def previous_outputs(out_dir: Path) -> list[Path]:
    """Every file a run may leave in `out_dir`, in either table format, finished or partial."""
    names = [OUTPUT_NAMES[key] for key in ("video", "mot", "heatmap", "report", "summary")]
    tables = ("detections", "frames", "tracks", "events", "visits", "presence")
    names += [f"{OUTPUT_NAMES[key]}.{fmt}" for key in tables for fmt in TABLE_FORMATS]
    snapshots = sorted((out_dir / "snapshots").glob("*.jpg"))  # --snapshots: one per event
    clips = sorted((out_dir / CLIPS).glob("*.mp4")) + sorted((out_dir / CLIPS).glob(".*.partial"))  # --clips
    return [out_dir / name for name in names] + [out_dir / f".{name}.partial" for name in names] + snapshots + clips


@contextlib.contextmanager
def _writing(out_dir: Path) -> Iterator[None]:
    """An output that cannot be written (a read-only folder, a full disk) is one line naming the folder."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or out_dir
        raise VidpipeError(f"cannot write {where}: {exc.strerror or exc}") from None


def _figures(profile: StageProfile, wall_s: float, frames: int) -> StageFigures:
    return StageFigures(
        stage=profile.name,
        frames_per_busy_s=round(frames / profile.busy_s, 1) if profile.busy_s else None,
        busy_fraction=round(profile.busy_s / wall_s, 3) if wall_s else None,
        mean_queue=round(profile.mean_queue, 2),
        queue_capacity=profile.capacity,
    )

"""The pipeline: source -> detector (in batches) -> tracker -> sinks, and its configuration.

A `PipelineConfig` is the command line in a data structure: a preset file (`pipelines/*.yaml`) holds
the same keys, and command-line options override it. A `Pipeline` loads its detector once and can run
any number of inputs.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from importlib.resources import files
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from . import __version__
from .annotate import Annotator
from .detections import Detections
from .detectors import Detector, DetectorSettings, StagedDetector, load_detector, resolve_classes
from .engine import StageProfile, Stages
from .errors import InputError
from .frames import Frame, VideoInfo
from .live import LatestFrames, LiveMonitor
from .sinks import TABLE_FORMATS, DetectionTableSink, FrameTableSink, MotSink, PartialFile, Sink, VideoSink
from .sources import Sampling, Source, open_source
from .stopping import frame_boundary
from .tracking import NO_TRACKER, TRACKERS, ByteTrackConfig, Tracker, create_tracker

log = logging.getLogger("vidpipe")

DEFAULT_CONF = 0.25
ENGINES = ("threaded", "sequential")
QUEUE_BATCHES = 2  # batches waiting between two stages: enough to keep each busy, little memory
OUTPUT_NAMES = {
    "video": "annotated.mp4",
    "detections": "detections",
    "frames": "frames",
    "mot": "tracks.txt",
    "summary": "summary.json",
}


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that shapes a run; the defaults are written out in `pipelines/default.yaml`."""

    # detection
    detector: str = "yolo"
    model: str | None = None  # None: the backend's default (YOLO: the bundled yolov8n.pt)
    conf: float | None = None  # None: 0.25, or the tracker's low threshold when tracking
    iou: float = 0.7
    imgsz: int = 640
    device: str | None = None
    classes: list[str | int] | None = None
    batch_size: int = 4  # CPU runtimes queue frame by frame, so bigger batches only hold more frames
    runtime: str = "auto"  # auto | torch | onnx | openvino (YOLO): auto exports to OpenVINO on a CPU
    precision: str = "auto"  # auto (the runtime's default, bf16 on CPUs that have it) | fp32
    engine: str = "threaded"  # threaded (stages overlap) | sequential (one frame at a time, one thread)
    threads: int | None = None  # cap on each library's threads (decoder, inference, encoder); None: all cores
    # tracking
    tracker: str = "bytetrack"
    bytetrack: dict = field(default_factory=lambda: asdict(ByteTrackConfig()))
    # frame selection
    stride: int = 1
    sample_fps: float | None = None
    start: float = 0.0
    end: float | None = None
    max_frames: int | None = None
    fps: float | None = None  # frame rate of image sequences
    # drawing and outputs
    trails: bool = False
    overlay: bool = False  # fps, latency and dropped frames in the corner of the annotated video
    video: bool = True
    video_preset: str = "ultrafast"  # x264: chosen for speed; slower presets make smaller files
    video_crf: int = 23
    table_format: str = "parquet"
    top_k: int = 3  # the per-frame table names the k highest-scoring objects
    mot: bool = True

    def __post_init__(self) -> None:
        if self.table_format not in TABLE_FORMATS:
            raise InputError(f"table_format must be one of {', '.join(TABLE_FORMATS)}, got {self.table_format!r}")
        if self.tracker != NO_TRACKER and self.tracker not in TRACKERS:
            raise InputError(f"unknown tracker {self.tracker!r} (available: {', '.join([*TRACKERS, NO_TRACKER])})")
        if self.engine not in ENGINES:
            raise InputError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.conf is not None and not 0.0 <= self.conf <= 1.0:
            raise InputError(f"conf must lie in [0, 1], got {self.conf}")
        if isinstance(self.classes, str):
            object.__setattr__(self, "classes", [c.strip() for c in self.classes.split(",") if c.strip()])
        ByteTrackConfig.from_dict(self.bytetrack)  # fail on bad tracker parameters before any work

    @classmethod
    def from_dict(cls, values: dict, origin: str = "pipeline") -> PipelineConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InputError(f"{origin}: unknown key(s) {', '.join(unknown)}")
        values = dict(values)
        if "bytetrack" in values:  # a preset may set a few tracker parameters; the rest keep their defaults
            values["bytetrack"] = {**asdict(ByteTrackConfig()), **(values["bytetrack"] or {})}
        return cls(**values)

    @classmethod
    def load(cls, preset: str | Path | None = None, **overrides) -> PipelineConfig:
        """Defaults, then the preset file (a path or a shipped preset's name), then `overrides` (None = unset)."""
        values: dict = {}
        if preset is not None:
            path = find_preset(preset)
            try:
                values = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise InputError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
            if not isinstance(values, dict):
                raise InputError(f"{path} must be a mapping of settings")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values, origin=str(preset or "pipeline"))

    def sampling(self) -> Sampling:
        return Sampling(self.stride, self.sample_fps, self.start, self.end, self.max_frames)

    def detection_conf(self) -> float:
        """The detector's threshold: ByteTrack needs the low-score boxes, so tracking lowers the default."""
        if self.conf is not None:
            return self.conf
        if self.tracker == "bytetrack":
            return min(DEFAULT_CONF, self.bytetrack["track_low_thresh"])
        return DEFAULT_CONF

    def tracker_params(self) -> dict:
        return dict(self.bytetrack) if self.tracker == "bytetrack" else {}


def presets() -> dict[str, Path]:
    """The shipped preset pipelines by name."""
    return {p.name.removesuffix(".yaml"): Path(str(p)) for p in files("vidpipe.pipelines").iterdir()
            if p.name.endswith(".yaml")}


def find_preset(preset: str | Path) -> Path:
    path = Path(preset)
    if path.is_file():
        return path
    shipped = presets()
    if str(preset) in shipped:
        return shipped[str(preset)]
    raise InputError(f"pipeline {preset} not found (a YAML file, or one of: {', '.join(sorted(shipped))})")


@dataclass
class RunResult:
    out_dir: Path
    outputs: dict[str, Path]
    summary: dict

    @property
    def interrupted(self) -> bool:
        return self.summary["status"] == "interrupted"


class Pipeline:
    """Detect, track, draw and write; the detector is loaded once and reused for every input."""

    def __init__(self, config: PipelineConfig | None = None, detector: Detector | None = None) -> None:
        self.config = config or PipelineConfig()
        cfg = self.config
        self.detector = detector or load_detector(cfg.detector, DetectorSettings(
            model=cfg.model, conf=cfg.detection_conf(), iou=cfg.iou, imgsz=cfg.imgsz, device=cfg.device,
            classes=cfg.classes, runtime=cfg.runtime, precision=cfg.precision, threads=cfg.threads,
        ))
        if self.config.threads:
            cv2.setNumThreads(self.config.threads)

    def run(self, input: str | Path, out_dir: str | Path | None = None, progress: bool | Callable[[int], None] = True,
            name: str | None = None) -> RunResult:
        """Process one input; outputs go to `out_dir` (default `runs/<input name>/`).

        `progress`: a progress bar (True), nothing (False), or a function told how many frames were just done.
        `name` replaces the input's name (the file stem) in tables, e.g. a corpus's video id.
        """
        cfg = self.config
        source = open_source(input, cfg.sampling(), cfg.fps, threads=cfg.threads)
        if name:
            source.info = replace(source.info, name=name)
        try:
            return self.process(source, Path(out_dir) if out_dir else Path("runs") / source.info.name, progress)
        finally:
            source.close()

    def process(self, source: Source, out_dir: Path, progress: bool | Callable[[int], None] = True,
                viewers: Sequence[Sink] = (), duration: float | None = None,
                monitor: LiveMonitor | None = None) -> RunResult:
        """Run an opened source to its end (or `duration` seconds, or Ctrl-C / SIGTERM) into `out_dir`.

        A live source (`source.live`) is read into a newest-frame mailbox and processed one frame at a time,
        with latency measured per frame; `viewers` (preview window, web page) get every annotated frame, and
        `monitor` gathers the live figures they show.
        """
        cfg = self.config
        info = source.info
        live = getattr(source, "live", False)
        tracker = create_tracker(cfg.tracker, info.fps, cfg.tracker_params())
        summary_file = out_dir / OUTPUT_NAMES["summary"]
        summary_file.unlink(missing_ok=True)  # a stale summary must not vouch for new, partial outputs
        started = dt.datetime.now(dt.timezone.utc)
        sinks = self._open_sinks(info, out_dir, clock_origin=started if live else None)
        monitor = monitor or LiveMonitor()
        annotator = Annotator(trails=cfg.trails, overlay=monitor.overlay_lines if cfg.overlay else None)
        drawn = [sink for key, sink in sinks.items() if key == "video"] + list(viewers)  # get annotated frames
        tables = [sink for key, sink in sinks.items() if key != "video"]
        watched = live or cfg.overlay  # only then are fps and latency needed
        stats = RunStats()
        clock = time.perf_counter()
        status = "complete"
        bar = tqdm(total=None if live else cfg.sampling().estimate(info), unit="frame", desc=info.name,
                   disable=progress is not True, dynamic_ncols=True, mininterval=0.5)
        report = progress if callable(progress) else bar.update
        stream, stages = self._live_stream(source, tracker, monitor) if live else self._stream(source, tracker)
        write = StageProfile("write")
        try:
            try:
                for frame, detections in stream:
                    with frame_boundary():  # a stop signal waits until every output has this frame
                        start = time.perf_counter()
                        shown = replace(frame, image=annotator.annotate(frame.image, detections)) if drawn else frame
                        for sink in drawn:
                            sink.write(shown, detections)
                        for sink in tables:
                            sink.write(frame, detections)
                        write.busy_s += time.perf_counter() - start
                        if watched:
                            monitor.frame_done(frame, detections)
                        stats.add(frame, detections)
                        report(1)
                    if duration is not None and time.perf_counter() - clock >= duration:
                        break
                    if live and cfg.max_frames is not None and stats.frames >= cfg.max_frames:
                        break
            except KeyboardInterrupt:
                status = "stopped" if live else "interrupted"  # finish what was processed into valid files
            finally:
                stream.close()  # stops the engine's (or the capture's) threads
            if stats.frames == 0:
                raise InputError(_no_frames_message(info, cfg.sampling()))
            for sink in [*sinks.values(), *viewers]:
                sink.close()
        except BaseException:
            for sink in [*sinks.values(), *viewers]:
                sink.abort()
            raise
        finally:
            bar.close()
        wall = time.perf_counter() - clock
        profiles = [*(stages.profiles if stages else []), write]
        if source.lost_frames:
            log.warning("%s: %d frame(s) could not be decoded (truncated or corrupt input); processed %d",
                        info.uri, source.lost_frames, stats.frames)
        outputs = {key: sink.path for key, sink in sinks.items()}
        summary = {
            "vidpipe_version": __version__,
            "status": status,
            "input": info.as_dict(),
            "detector": {
                "name": cfg.detector,
                "model": self.detector.model,
                "classes": cfg.classes,
                "conf": cfg.detection_conf(),
                "iou": cfg.iou,
                "imgsz": cfg.imgsz,
                "device": cfg.device,
                "batch_size": cfg.batch_size,
                "runtime": getattr(self.detector, "runtime", None),
                "precision": getattr(self.detector, "precision", None),
            },
            "tracker": {"name": tracker.name, "params": tracker.params()} if tracker else None,
            "sampling": asdict(cfg.sampling()),
            **stats.as_dict(),
            "frames_lost": source.lost_frames,
            "wall_time_s": round(wall, 3),
            "fps": round(stats.frames / wall, 2) if wall > 0 else None,
            "started_at": started.isoformat(timespec="seconds"),
            "engine": cfg.engine,
            "stages": [p.as_dict(wall, stats.frames) for p in profiles],
            "outputs": {key: path.name for key, path in outputs.items()},
        }
        if "video" in sinks:
            summary["video_output"] = {"codec": sinks["video"].codec, "width": sinks["video"].width,
                                       "height": sinks["video"].height}
        if live:
            summary["live"] = monitor.summary(source)
        _write_json(summary, summary_file)
        outputs["summary"] = summary_file
        return RunResult(out_dir, outputs, summary)

    def frames(self, source: Iterable[Frame], tracker: Tracker | None = None) -> Iterator[tuple[Frame, Detections]]:
        """Each frame with its (tracked) detections, detecting in batches of `batch_size`; one thread."""
        for batch in _batched(source, self.config.batch_size):
            yield from self._track(tracker, self._detect(batch))

    def _stream(self, source: Iterable[Frame], tracker: Tracker | None):
        """The frames with their detections, from the threaded engine or the sequential loop."""
        if self.config.engine == "sequential":
            return self.frames(source, tracker), None
        batches = _batched(source, self.config.batch_size)
        detector = self.detector
        if isinstance(detector, StagedDetector):
            # The reading thread decodes, prepares and submits; the model queues the work, and the detect
            # stage only waits for results, so inference never pauses for Python's pre- or post-processing.
            batches = ((batch, detector.submit(detector.prepare([f.image for f in batch]))) for batch in batches)

            def detect(item: tuple[list[Frame], object]) -> list[tuple[Frame, Detections]]:
                return self._track(tracker, list(zip(item[0], detector.collect(item[1]))))
        else:
            def detect(batch: list[Frame]) -> list[tuple[Frame, Detections]]:
                return self._track(tracker, self._detect(batch))
        stages = Stages(batches, [("detect", detect)], queue_size=QUEUE_BATCHES)
        return (pair for batch in stages for pair in batch), stages

    def _live_stream(self, source: Source, tracker: Tracker | None, monitor: LiveMonitor):
        """Newest frame first, one at a time: batching would only add latency."""
        # Compile the model for this frame size before the first real frame, whose latency would show it.
        self.detector.detect([np.zeros((source.info.height, source.info.width, 3), np.uint8)])
        capture = LatestFrames(source)
        monitor.capture = capture

        def frames() -> Iterator[tuple[Frame, Detections]]:
            for frame in capture:
                start = time.perf_counter()
                (detections,) = self.detector.detect([frame.image])
                monitor.inference_ms.append(1000 * (time.perf_counter() - start))
                yield frame, tracker.update(detections, frame.time) if tracker else detections

        return frames(), None

    def _detect(self, batch: list[Frame]) -> list[tuple[Frame, Detections]]:
        return list(zip(batch, self.detector.detect([f.image for f in batch])))

    @staticmethod
    def _track(tracker: Tracker | None, batch: list[tuple[Frame, Detections]]) -> list[tuple[Frame, Detections]]:
        if tracker is None:
            return batch
        return [(frame, tracker.update(detections, frame.time)) for frame, detections in batch]

    def _open_sinks(self, info: VideoInfo, out_dir: Path, clock_origin: dt.datetime | None = None) -> dict[str, Sink]:
        """The run's output files; `clock_origin` (live runs) adds wall-clock times to the tables."""
        cfg = self.config
        sinks: dict[str, Sink] = {}
        try:
            if cfg.video:
                sinks["video"] = VideoSink(
                    out_dir / OUTPUT_NAMES["video"], info, preset=cfg.video_preset, crf=cfg.video_crf,
                    threads=cfg.threads, copy_audio=clock_origin is None,
                    audio_to_end=cfg.end is None and cfg.max_frames is None,
                )
            sinks["detections"] = DetectionTableSink(
                out_dir / f"{OUTPUT_NAMES['detections']}.{cfg.table_format}", info.name, cfg.table_format,
                clock_origin=clock_origin,
            )
            names = self.detector.names
            class_ids = resolve_classes(cfg.classes, names)
            interest = class_ids if class_ids is not None else [i for i, n in enumerate(names) if n == "person"]
            sinks["frames"] = FrameTableSink(
                out_dir / f"{OUTPUT_NAMES['frames']}.{cfg.table_format}", info.name, names, cfg.table_format,
                classes=class_ids, interest=interest, top_k=cfg.top_k, clock_origin=clock_origin,
            )
            if cfg.mot:
                sinks["mot"] = MotSink(out_dir / OUTPUT_NAMES["mot"])
        except BaseException:
            for sink in sinks.values():
                sink.abort()
            raise
        return sinks


class RunStats:
    """Counts gathered while frames flow, for the summary."""

    def __init__(self) -> None:
        self.frames = 0
        self.first_frame: int | None = None
        self.last_frame: int | None = None
        self.per_class: Counter = Counter()
        self.track_classes: defaultdict[int, Counter] = defaultdict(Counter)

    def add(self, frame: Frame, detections: Detections) -> None:
        self.frames += 1
        if self.first_frame is None:
            self.first_frame = frame.index
        self.last_frame = frame.index
        names = detections.class_name
        self.per_class.update(names.tolist())
        for track, name in zip(detections.track_id[detections.is_tracked].tolist(), names[detections.is_tracked]):
            self.track_classes[track][name] += 1

    def as_dict(self) -> dict:
        """A track counts for the class it was detected as most often."""
        tracks_per_class = Counter(c.most_common(1)[0][0] for c in self.track_classes.values())
        return {
            "frames_processed": self.frames,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "detections": sum(self.per_class.values()),
            "detections_per_class": dict(self.per_class.most_common()),
            "tracks": len(self.track_classes),
            "tracks_per_class": dict(tracks_per_class.most_common()),
        }


def run(input: str | Path, out_dir: str | Path | None = None, *, pipeline: str | Path | None = None,
        progress: bool = False, **options) -> RunResult:
    """One-call use from Python: `vidpipe.run("clip.mp4", classes=["person"])` (options as on the CLI)."""
    return Pipeline(PipelineConfig.load(pipeline, **options)).run(input, out_dir, progress=progress)


def _batched(items: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _no_frames_message(info: VideoInfo, sampling: Sampling) -> str:
    if sampling.start or sampling.end is not None:
        return f"{info.uri}: no frames in the selected time range ({sampling.start}s to {sampling.end or 'end'})"
    return f"{info.uri} contains no decodable video frames"


def _write_json(data: dict, path: Path) -> None:
    out = PartialFile(path)
    out.partial.write_text(json.dumps(data, indent=2, default=str) + "\n")
    out.commit()

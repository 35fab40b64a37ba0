"""What a run reports: `RunSummary`, a typed record written as `summary.json` (and read back from it).

Every part is a small frozen dataclass, so the CLI, the corpus table and users' code read fields, not dict
keys, and the JSON's keys are defined in one place.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from . import __version__
from .files import write_atomic
from .frames import VideoInfo
from .sources import Sampling


@dataclass(frozen=True)
class Counts:
    """What passed through: frames, detections per class, and objects per class: confirmed tracks, each once,
    for its class (`tracking.confirm`); tracks never confirmed are only counted, in `unconfirmed_tracks`."""

    frames_processed: int = 0
    first_frame: int | None = None
    last_frame: int | None = None
    detections_per_class: dict[str, int] | None = None
    tracks_per_class: dict[str, int] | None = None
    unconfirmed_tracks: int = 0

    @property
    def detections(self) -> int:
        return sum((self.detections_per_class or {}).values())

    @property
    def tracks(self) -> int:
        return sum((self.tracks_per_class or {}).values())

    def to_dict(self) -> dict:
        return {"frames_processed": self.frames_processed, "first_frame": self.first_frame,
                "last_frame": self.last_frame, "detections": self.detections,
                "detections_per_class": dict(self.detections_per_class or {}), "tracks": self.tracks,
                "tracks_per_class": dict(self.tracks_per_class or {}), "unconfirmed_tracks": self.unconfirmed_tracks}


@dataclass(frozen=True)
class StageFigures:
    """One stage of the engine: frames per busy second, share of the wall time busy, input queue use."""

    stage: str
    frames_per_busy_s: float | None
    busy_fraction: float | None
    mean_queue: float
    queue_capacity: int


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p95: float
    mean: float
    max: float

    @classmethod
    def of(cls, values) -> Percentiles | None:
        values = np.asarray(values, dtype=np.float64)
        if not len(values):
            return None
        p50, p95 = np.percentile(values, [50, 95])
        return cls(*(round(float(v), 2) for v in (p50, p95, values.mean(), values.max())))


@dataclass(frozen=True)
class LiveFigures:
    """A live run's figures: frames captured and dropped, latency and inference time (ms), stream gaps."""

    frames_captured: int | None
    frames_dropped: int
    latency_ms: Percentiles | None
    inference_ms: Percentiles | None
    reconnects: int
    gaps: tuple[dict, ...] = ()  # `vidpipe.sources.Gap.as_dict()` of each
    connection: tuple[dict, ...] = ()  # each change of the source's state: {state, time_s}


@dataclass(frozen=True)
class DetectorFacts:
    name: str
    model: str
    classes: list | None
    conf: float
    iou: float
    imgsz: int
    device: str | None
    batch_size: int
    runtime: str
    precision: str
    names: list = field(default_factory=list)  # the model's class names by id: an export's categories


@dataclass(frozen=True)
class TrackerFacts:
    name: str
    params: dict
    merge_iou: float = 0.0  # boxes of two classes this alike were merged before tracking (0: not merged)
    link: str = "online"  # how an object's tracks were joined: offline | online | off (`tracking.link`)
    linked_tracks: int = 0  # offline: the tracks joined to an earlier track of their object


@dataclass(frozen=True)
class VideoOutput:
    codec: str
    width: int
    height: int


@dataclass(frozen=True)
class RunSummary:
    """One run of one input. `status` is complete, partial (ended without a stop, but frames could not be
    decoded: a file cut short or damaged), interrupted (Ctrl-C, SIGTERM or SIGHUP: the outputs cover the frames done),
    stopped (a live run ended by the user) or gave_up (a live stream that did not come back within
    --max-reconnects). Frame counts name their unit: `counts.frames_processed` are the frames kept (after
    sampling); `frames_decoded` the pictures the decoder gave (None where the source does not count them: a live
    one); `source_frames_lost` the input's frames the decoder could not give (damage) and
    `source_frames_unread` those after the point where reading stopped early (a stop, --end, --max-frames).
    `missing_outputs` is what a second stop cut from the finishing; `size_changes` each change of the frame
    size in the stream (boxes in the tables are in the pixels of the frame they belong to); `scene_cuts` where
    the video cut to another shot (every track ended there: `tracking.cuts`)."""

    status: str
    input: VideoInfo
    detector: DetectorFacts
    tracker: TrackerFacts | None
    sampling: Sampling
    counts: Counts
    source_frames_lost: int
    wall_time_s: float
    started_at: str
    engine: str
    stages: tuple[StageFigures, ...]
    outputs: dict[str, str]  # output key -> file name, beside summary.json
    video_output: VideoOutput | None = None
    live: LiveFigures | None = None
    lines: dict[str, dict] | None = None  # per counting line: {"in": {class: n}, "out": {class: n}}
    # per zone: visits (complete and cut), mean, median and max dwell of the complete ones, peak occupancy
    zones: dict[str, dict] | None = None
    source_frames_unread: int = 0
    frames_decoded: int | None = None
    missing_outputs: tuple[str, ...] = ()
    size_changes: tuple[dict, ...] = ()  # {frame, time_s, width, height} from that frame on
    scene_cuts: tuple[float, ...] = ()  # seconds where the video cut to another shot (with a tracker)
    regions: tuple[dict, ...] = ()  # the lines and zones as configured: {kind, name, points, classes}
    events_out: tuple[dict, ...] = ()  # each --events sink: {url, sent, dropped}
    # masks and class filters (`vidpipe.screen`): {masks, filters, dropped: {reason: detections}}
    filtered: dict | None = None
    vidpipe_version: str = __version__

    @property
    def interrupted(self) -> bool:
        return self.status == "interrupted"

    @property
    def end_s(self) -> float | None:
        """Where the input covered ends: its duration, or --end if earlier (None when neither is known)."""
        ends = [x for x in (self.input.duration, self.sampling.end) if x]
        return min(ends) if ends else None

    @property
    def effective_fps(self) -> float | None:
        """Frames processed per second of input covered: with --sample-mode keyframes, the rate really got."""
        span = self.end_s - self.sampling.start if self.end_s else 0.0
        return round(self.counts.frames_processed / span, 3) if span > 0 else None

    @property
    def fps(self) -> float | None:
        return round(self.counts.frames_processed / self.wall_time_s, 2) if self.wall_time_s > 0 else None

    def answers(self) -> list[str]:
        """The counts in a few lines for the terminal: each line's crossings, each zone's visits and dwell,
        and the objects per class (the report's Answers section)."""
        out = []
        for name, figures in (self.lines or {}).items():
            out.append(f"line {name}: " + ", ".join(
                f"{d} {sum(figures[d].values())}" + (f" ({', '.join(f'{c} {n}' for c, n in figures[d].items())})"
                                                    if figures[d] else "") for d in ("in", "out")))
        for name, z in (self.zones or {}).items():
            dwell = (f"dwell mean {z['mean_dwell_s']:.1f} s, median {z['median_dwell_s']:.1f} s, max "
                     f"{z['max_dwell_s']:.1f} s" if z["complete_visits"] else "no complete visit to time")
            out.append(f"zone {name}: {z['visits']} visits ({z['complete_visits']} complete, {z['cut_visits']} cut "
                       f"by the input's ends or lost tracks); {dwell}; at most {z['peak_occupancy']} inside at once")
        if self.counts.tracks_per_class and (self.lines or self.zones):
            out.append("objects: " + ", ".join(f"{c} {n}" for c, n in self.counts.tracks_per_class.items()))
        return out

    def to_dict(self) -> dict:
        data = {
            "vidpipe_version": self.vidpipe_version,
            "status": self.status,
            "input": {**self.input.as_dict(), "size_changes": list(self.size_changes),
                      "scene_cuts_s": list(self.scene_cuts)},
            "detector": asdict(self.detector),
            "tracker": asdict(self.tracker) if self.tracker else None,
            "sampling": {**asdict(self.sampling), "effective_fps": self.effective_fps},
            **self.counts.to_dict(),
            "frames_decoded": self.frames_decoded,
            "source_frames_lost": self.source_frames_lost,
            "source_frames_unread": self.source_frames_unread,
            "wall_time_s": self.wall_time_s,
            "fps": self.fps,
            "started_at": self.started_at,
            "engine": self.engine,
            "stages": [asdict(stage) for stage in self.stages],
            "outputs": dict(self.outputs),
            "missing_outputs": list(self.missing_outputs),
        }
        if self.video_output:
            data["video_output"] = asdict(self.video_output)
        if self.live:
            data["live"] = asdict(self.live)
        if self.lines:
            data["lines"] = self.lines
        if self.zones:
            data["zones"] = self.zones
        if self.regions:
            data["regions"] = list(self.regions)
        if self.events_out:
            data["events_out"] = list(self.events_out)
        if self.filtered:
            data["filtered"] = self.filtered
        return data

    def write(self, path: str | Path) -> Path:
        return write_atomic(path, json.dumps(self.to_dict(), indent=2, default=str) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> RunSummary:
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_dict(cls, data: dict) -> RunSummary:
        source = dict(data["input"])
        source["duration"] = source.pop("duration_s")
        size_changes = tuple(source.pop("size_changes", ()))
        scene_cuts = tuple(source.pop("scene_cuts_s", ()))
        live = data.get("live")
        if live:
            live = LiveFigures(**{**live, "latency_ms": _percentiles(live["latency_ms"]),
                                  "inference_ms": _percentiles(live["inference_ms"]),
                                  "gaps": tuple(live["gaps"]), "connection": tuple(live.get("connection", ()))})
        counts = {f.name: data[f.name] for f in fields(Counts) if f.name in data}  # older summaries lack some
        return cls(
            status=data["status"], input=VideoInfo(**source), detector=DetectorFacts(**data["detector"]),
            tracker=TrackerFacts(**data["tracker"]) if data["tracker"] else None,
            sampling=Sampling(**{k: v for k, v in data["sampling"].items() if k != "effective_fps"}),
            counts=Counts(**counts), source_frames_lost=data["source_frames_lost"],
            wall_time_s=data["wall_time_s"], started_at=data["started_at"], engine=data["engine"],
            stages=tuple(StageFigures(**stage) for stage in data["stages"]), outputs=data["outputs"],
            video_output=VideoOutput(**data["video_output"]) if data.get("video_output") else None,
            live=live, lines=data.get("lines"), zones=data.get("zones"),
            source_frames_unread=data.get("source_frames_unread", 0), frames_decoded=data.get("frames_decoded"),
            missing_outputs=tuple(data.get("missing_outputs", ())), size_changes=size_changes, scene_cuts=scene_cuts,
            regions=tuple(data.get("regions", ())), events_out=tuple(data.get("events_out", ())),
            filtered=data.get("filtered"), vidpipe_version=data["vidpipe_version"],
        )


def _percentiles(data: dict | None) -> Percentiles | None:
    return Percentiles(**data) if data else None

"""A pipeline's configuration: the command line in a data structure, checked as a whole when it is built.

A `PipelineConfig` holds every setting of a run. A preset file (`pipelines/*.yaml`) holds the same keys,
and command-line options override it. Each default is defined once, where the setting is used: the
detector's in `DetectorSettings`, the frame selection's in `Sampling`, each tracker's in its `Config`, the
video encoder's in `sinks`. A bad value anywhere fails here, before a model is loaded or a file written.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from importlib.resources import files
from pathlib import Path

import yaml

from .analytics import ANCHORS, DEFAULT_HYSTERESIS_S, Region, check_names
from .annotate import COLOR_BY, LABEL_PARTS
from .clips import parse_clips
from .detections import DUPLICATE_IOU
from .detectors import DetectorSettings, split_classes
from .errors import InputError
from .events import check_url
from .screen import parse_filters, parse_masks
from .sinks import TABLE_FORMATS, VIDEO_CRF, VIDEO_PRESET
from .sources import MAX_FPS, Sampling
from .tracking import NO_TRACKER, TRACKERS, ConfirmRule, tracker_config, tracker_defaults
from .tracking.confirm import CONFIRM_FRAMES, CONFIRM_SCORE
from .tracking.cuts import MODES as SCENE_CUTS
from .tracking.link import LINK_MODES
from .tracking.motion import MODES as CAMERA_MOTION

ENGINES = ("threaded", "sequential")
MAX_BATCH = 1024  # frames held per detector call; far past what a GPU's memory takes at 640 px
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
_DETECTION, _SAMPLING = DetectorSettings(), Sampling()
# What a live run cannot honour: it takes the newest frame, one at a time, as it arrives.
LIVE_EXCLUDED = ("stride", "sample_fps", "start", "end", "sequence_fps", "batch_size", "engine")
FILE_SELECTION = LIVE_EXCLUDED[:5]  # a file played as a camera (--realtime) still honours these


def parse_regions(given: object, kind: str) -> list[Region]:
    """The `lines` or `zones` (`kind`) of a run or a camera: each `NAME=x1,y1,...` or a preset's mapping."""
    if not isinstance(given, (list, tuple)):
        raise InputError(f"{kind} must be a list of {kind}, got {given!r}")
    return [Region.parse(r, kind[:-1]) if isinstance(r, str) else Region.of(r, kind[:-1]) for r in given]


VIEW = ("lines", "zones", "masks", "filters", "clips")  # what a camera of many may set for its own view
CAMERA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # a folder name and a URL path part as it is


@dataclass(frozen=True)
class CameraEntry:
    """One camera of a many-camera live run: its source, its name (its output folder and its path on the
    page; None: made from the source) and the lines, zones, masks and class filters of its own view (None:
    the run's)."""

    source: str
    name: str | None = None
    lines: tuple | None = None
    zones: tuple | None = None
    masks: tuple | None = None
    filters: dict | None = None
    clips: tuple[float, float] | None = None

    @classmethod
    def of(cls, spec: str | dict | CameraEntry) -> CameraEntry:
        """`SOURCE` or `NAME=SOURCE` from the command line, or a preset's mapping (source, name, lines, zones,
        masks, filters, clips)."""
        if isinstance(spec, CameraEntry):
            return spec
        if isinstance(spec, str):
            name, sep, source = spec.partition("=")
            if sep and CAMERA_NAME.fullmatch(name) and not Path(spec).exists():
                return cls.of({"name": name, "source": source})
            return cls.of({"source": spec})
        if not isinstance(spec, dict) or set(spec) - {"name", "source", *VIEW} or not spec.get("source"):
            raise InputError(f"a camera is a source, or a mapping with source and optionally name, lines, zones, "
                             f"masks, filters and clips, got {spec!r}")
        name = spec.get("name")
        if name is not None and not (isinstance(name, str) and CAMERA_NAME.fullmatch(name)):
            raise InputError(f"camera name {name!r}: use letters, digits, '_', '-' and '.' (it names a folder)")
        regions = {kind: None if spec.get(kind) is None else tuple(parse_regions(spec[kind], kind))
                   for kind in ("lines", "zones")}
        check_names(regions["lines"] or (), regions["zones"] or ())
        masks = None if spec.get("masks") is None else tuple(parse_masks(spec["masks"]))
        filters = None if spec.get("filters") is None else parse_filters(spec["filters"])
        return cls(str(spec["source"]), name, **regions, masks=masks, filters=filters,
                   clips=parse_clips(spec.get("clips")))


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that shapes a run; the defaults are written out in `pipelines/default.yaml`."""

    # detection: every DetectorSettings field, with its default
    detector: str = "yolo"
    model: str | None = _DETECTION.model  # None: the backend's default (YOLO: the bundled yolov8n.pt)
    conf: float | None = None  # None: DetectorSettings' default, or lower, to the tracker's min_score
    iou: float = _DETECTION.iou
    imgsz: int = _DETECTION.imgsz
    device: str | None = _DETECTION.device
    classes: list[str | int] | None = None
    batch_size: int = 4  # CPU runtimes queue frame by frame, so bigger batches only hold more frames
    runtime: str = _DETECTION.runtime  # auto | torch | onnx | openvino (YOLO): auto exports to OpenVINO on a CPU
    precision: str = _DETECTION.precision  # auto | fp32 | bf16 | int8 (see detectors.quantize)
    engine: str = "threaded"  # threaded (stages overlap) | sequential (one frame at a time, one thread)
    detect_every: int = 1  # run the detector on every Kth frame; the tracker predicts the frames between
    threads: int | None = _DETECTION.threads  # cap on each library's threads; None: all cores
    # tracking
    tracker: str = "bytetrack"
    merge_iou: float = DUPLICATE_IOU  # before tracking, boxes of two classes this alike are one (0: keep both)
    camera_motion: str = "auto"  # move tracks with the camera: auto (where it moves) | on | off
    scene_cuts: str = "auto"  # every track ends where the video cuts to another shot: auto (files) | on | off
    trackers: dict[str, dict] = field(default_factory=tracker_defaults)  # parameters by tracker name
    confirm_frames: int = CONFIRM_FRAMES  # a track is an object once detected this often...
    confirm_score: float = CONFIRM_SCORE  # ...with the median of its latest 10 scores at least this
    link: str = "online"  # join an object's tracks: online (the tracker's relinking) | offline (files) | off
    # frame selection: every Sampling field, with its default
    stride: int = _SAMPLING.stride
    sample_fps: float | None = _SAMPLING.sample_fps
    start: float = _SAMPLING.start
    end: float | None = _SAMPLING.end
    max_frames: int | None = _SAMPLING.max_frames
    sample_mode: str = _SAMPLING.sample_mode  # exact (the frames decoding everything gives) | keyframes (fast)
    sequence_fps: float | None = None  # frame rate of image sequences (None: seqinfo.ini, else 30)
    # drawing and outputs
    labels: list[str] = field(default_factory=lambda: list(LABEL_PARTS))  # any of class, id, score; [] for none
    color_by: str = "track"  # track | class
    trails: bool = False
    overlay: bool = False  # fps, latency and dropped frames in the corner of the annotated video
    video: bool = True
    video_preset: str = VIDEO_PRESET
    video_crf: int = VIDEO_CRF
    table_format: str = "parquet"
    top_k: int = 3  # the per-frame table names the k highest-scoring objects
    mot: bool = True
    report: bool = True  # report.html: facts, plots and thumbnails of what was found
    # analytics: counting lines and zones (name, points in pixels or frame fractions, optional classes)
    lines: list = field(default_factory=list)
    zones: list = field(default_factory=list)
    anchor: str = "bottom-center"  # the point of a box that counts: bottom-center (where it stands) | center
    zone_hysteresis_s: float = DEFAULT_HYSTERESIS_S  # a zone's border must be crossed for this long to count
    line_hysteresis_s: float = DEFAULT_HYSTERESIS_S  # a crossing counts once the object stays past the line this long
    heatmap: bool = False  # heatmap.png: where tracked objects were
    # before tracking (vidpipe.screen): polygons whose detections are dropped, and per-class limits
    masks: list = field(default_factory=list)  # each x1,y1,x2,y2,x3,y3,... (as a zone's points), or {name, points}
    filters: dict = field(default_factory=dict)  # {class: {min_score, min_area, max_area}}
    # events out as they happen (vidpipe.events): file:///x.jsonl, http(s)://..., mqtt://host:port/prefix
    events: list = field(default_factory=list)
    snapshots: bool = False  # a JPEG of the frame for each event, in snapshots/ (and referenced by it)
    ha_discovery: bool = False  # Home Assistant's MQTT discovery configs, on the mqtt:// events URLs
    clips: tuple[float, float] | None = None  # (PRE, POST) seconds: each object's clip in clips/ (vidpipe.clips)
    clips_annotated: bool = False  # the clips show the boxes, lines and zones
    # a many-camera live run (`vidpipe live` with no SOURCE): each a source, or {name, source, lines, zones}
    cameras: list = field(default_factory=list)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", split_classes(self.classes))
        if isinstance(self.labels, str):  # the command line's `id,class` (or `none`)
            object.__setattr__(self, "labels", [p.strip() for p in self.labels.split(",") if p.strip() != "none"])
        unknown = [p for p in self.labels if p not in LABEL_PARTS]
        if unknown:
            raise InputError(f"labels: unknown part(s) {', '.join(map(repr, unknown))} (use any of "
                             f"{', '.join(LABEL_PARTS)}, or none)")
        for kind in ("lines", "zones"):
            object.__setattr__(self, kind, parse_regions(getattr(self, kind), kind))
        check_names(self.lines, self.zones)
        object.__setattr__(self, "masks", parse_masks(self.masks))
        object.__setattr__(self, "filters", parse_filters(self.filters))
        if not isinstance(self.cameras, (list, tuple)):
            raise InputError(f"cameras must be a list of cameras, got {self.cameras!r}")
        object.__setattr__(self, "cameras", [CameraEntry.of(c) for c in self.cameras])
        if isinstance(self.events, str):
            object.__setattr__(self, "events", [self.events])
        object.__setattr__(self, "clips", parse_clips(self.clips))
        if self.clips and self.tracker == NO_TRACKER:
            raise InputError("--clips needs a tracker: a clip follows one object from its start to its end")
        schemes = [check_url(url) for url in self.events]
        if self.ha_discovery and "mqtt" not in schemes:
            raise InputError("--ha-discovery needs an mqtt:// --events URL: Home Assistant reads its discovery "
                             "messages from the broker")
        for name, modes in (("camera_motion", CAMERA_MOTION), ("scene_cuts", SCENE_CUTS)):
            value = getattr(self, name)
            if isinstance(value, bool):  # YAML reads a bare on / off as true / false
                object.__setattr__(self, name, value := "on" if value else "off")
            if value not in modes:
                raise InputError(f"{name} must be one of {', '.join(modes)}, got {value!r}")
        if self.link not in LINK_MODES:
            raise InputError(f"link must be one of {', '.join(LINK_MODES)}, got {self.link!r}")
        if self.anchor not in ANCHORS:
            raise InputError(f"anchor must be one of {', '.join(ANCHORS)}, got {self.anchor!r}")
        if self.color_by not in COLOR_BY:
            raise InputError(f"color_by must be one of {', '.join(COLOR_BY)}, got {self.color_by!r}")
        _check_types(self)
        if self.table_format not in TABLE_FORMATS:
            raise InputError(f"table_format must be one of {', '.join(TABLE_FORMATS)}, got {self.table_format!r}")
        if self.tracker != NO_TRACKER and self.tracker not in TRACKERS:
            raise InputError(f"unknown tracker {self.tracker!r} (available: {', '.join([*TRACKERS, NO_TRACKER])})")
        for name, params in self.trackers.items():
            tracker_config(name, params)  # bad tracker parameters fail before any work
        if self.engine not in ENGINES:
            raise InputError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise InputError(f"batch_size must lie in [1, {MAX_BATCH}], got {self.batch_size}")
        if self.detect_every < 1:
            raise InputError(f"detect_every must be at least 1, got {self.detect_every}")
        if self.detect_every > 1 and self.tracker == NO_TRACKER:
            raise InputError("--detect-every needs a tracker: the frames between detections are the tracker's "
                             "predictions")
        if self.sequence_fps is not None and not 0 < self.sequence_fps <= MAX_FPS:
            raise InputError(f"sequence_fps must be above 0 and at most {MAX_FPS:,}, got {self.sequence_fps}")
        if self.video_preset not in X264_PRESETS:
            raise InputError(f"video_preset must be one of {', '.join(X264_PRESETS)}, got {self.video_preset!r}")
        if not 0 <= self.video_crf <= 51:
            raise InputError(f"video_crf must lie in [0, 51] (x264's range), got {self.video_crf}")
        if self.top_k < 0:
            raise InputError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 <= self.merge_iou <= 1.0:
            raise InputError(f"merge_iou must lie in [0, 1], got {self.merge_iou}")
        for key in ("zone_hysteresis_s", "line_hysteresis_s"):
            if getattr(self, key) < 0:
                raise InputError(f"{key} must be >= 0 seconds, got {getattr(self, key)}")
        self.sampling()
        self.detector_settings()
        self.confirm_rule()

    @classmethod
    def from_dict(cls, values: dict, origin: str = "pipeline") -> PipelineConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            hint = ""
            if set(unknown) & set(TRACKERS):
                hint = " (tracker parameters go under trackers:, e.g. trackers: {bytetrack: {track_buffer: 90}})"
            raise InputError(f"{origin}: unknown key(s) {', '.join(unknown)}{hint}")
        values = dict(values)
        if "trackers" in values:  # a preset may set a few parameters of a tracker; the rest keep their defaults
            given = values["trackers"] or {}
            if not isinstance(given, dict):
                raise InputError(f"{origin}: trackers must map tracker names to their parameters")
            for name in given:
                if name not in TRACKERS:
                    raise InputError(f"{origin}: trackers: unknown tracker {name!r} (known: {', '.join(TRACKERS)})")
            defaults = tracker_defaults()
            values["trackers"] = {name: {**params, **(given.get(name) or {})} for name, params in defaults.items()}
        return cls(**values)

    @classmethod
    def load(cls, preset: str | Path | None = None, **overrides) -> PipelineConfig:
        """Defaults, then the preset file (a path or a shipped preset's name), then `overrides` (None = unset)."""
        values: dict = {}
        if preset is not None:
            path = find_preset(preset)
            try:
                values = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
            except UnicodeDecodeError:
                raise InputError(f"{path} is not a YAML text file (it is not UTF-8 text)") from None
            except yaml.YAMLError as exc:
                mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
                where = f", line {mark.line + 1}" if mark else ""
                raise InputError(f"{path}{where} is not valid YAML: {problem or str(exc).splitlines()[0]}") from None
            if not isinstance(values, dict):
                raise InputError(f"{path} must be a mapping of settings")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values, origin=str(preset or "pipeline"))

    def sampling(self) -> Sampling:
        return Sampling(**{f.name: getattr(self, f.name) for f in fields(Sampling)})

    @property
    def slotted(self) -> bool:
        """Whether each kept frame stands for a `--sample-fps` slot, so the tables carry `target_s`."""
        return self.sample_fps is not None

    def detection_conf(self) -> float:
        """The detector's threshold: a tracker that uses low-score boxes (ByteTrack) lowers the default."""
        if self.conf is not None:
            return self.conf
        if self.tracker == NO_TRACKER:
            return _DETECTION.conf
        return min(_DETECTION.conf, tracker_config(self.tracker, self.tracker_params()).min_score)

    def detector_settings(self) -> DetectorSettings:
        """What the detector is built from: this config's fields of the same names."""
        values = {f.name: getattr(self, f.name) for f in fields(DetectorSettings)}
        return DetectorSettings(**{**values, "conf": self.detection_conf()})

    def confirm_rule(self) -> ConfirmRule:
        """When a track is an object (`tracking.confirm`)."""
        return ConfirmRule(self.confirm_frames, self.confirm_score)

    def tracker_params(self) -> dict:
        """The tracker's parameters; `--link off` turns ByteTrack's online relinking off."""
        params = dict(self.trackers.get(self.tracker, {}))
        return {**params, "relink_s": 0.0} if self.link == "off" and self.tracker == "bytetrack" else params

    def check_live(self, replay: bool = False) -> None:
        """A live run takes the newest frame, one at a time: settings it cannot honour are an error. A file
        or image folder played as a camera (`replay`) still picks its frames (--stride, --start...)."""
        defaults = PipelineConfig()
        excluded = [n for n in LIVE_EXCLUDED if not (replay and n in FILE_SELECTION)]
        given = [name for name in excluded if getattr(self, name) != getattr(defaults, name)]
        if self.link == "offline":
            given.append("link")
        if given:
            options = ", ".join("--sequential" if n == "engine" else "--link offline" if n == "link"
                                else f"--{n.replace('_', '-')}" for n in given)
            raise InputError(f"{options}: not for live sources, which always process the newest frame, one at a "
                             f"time (use --max-frames or --duration to bound a live run)")

    def check_no_cameras(self, command: str) -> None:
        """A preset's cameras: are for `vidpipe live`; another command silently ignoring them would mislead."""
        if self.cameras:
            raise InputError(f"cameras: is for vidpipe live (several cameras at once); vidpipe {command} takes its "
                             f"inputs on the command line")

    def as_dict(self) -> dict:
        """The settings as a preset file writes them."""
        values = asdict(self)
        for kind in ("lines", "zones", "masks"):
            values[kind] = _region_dicts(getattr(self, kind))
        values["filters"] = _filter_dicts(self.filters)
        values["cameras"] = [{"source": c.source, **({"name": c.name} if c.name else {}),
                              **{kind: _region_dicts(getattr(c, kind)) for kind in ("lines", "zones", "masks")
                                 if getattr(c, kind) is not None},
                              **({"filters": _filter_dicts(c.filters)} if c.filters is not None else {})}
                             for c in self.cameras]
        return values


def _region_dicts(regions) -> list[dict]:
    return [{"name": r.name, "points": [list(p) for p in r.points], **({"classes": list(r.classes)} if r.classes
                                                                        else {})} for r in regions]


def _filter_dicts(filters: dict) -> dict:
    return {name: {k: v for k, v in asdict(limits).items() if v is not None} for name, limits in filters.items()}


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


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (the last one would win unseen)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}
_TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}


def _check_types(config: PipelineConfig) -> None:
    """Scalar settings must have their declared type (a preset's `conf: abc` is named, not a crash later)."""
    for f in fields(config):
        kinds = [k.strip() for k in str(f.type).split("|")]
        value = getattr(config, f.name)
        if value is None and "None" in kinds:
            continue
        allowed = tuple(t for k in kinds for t in _TYPES.get(k, ()))
        if not allowed or len(allowed) != sum(len(_TYPES.get(k, ())) for k in kinds):
            continue  # a container or a type this check does not cover
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            expected = " or ".join(_TYPE_WORDS[k] for k in kinds if k != "None")
            raise InputError(f"{f.name} must be {expected}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):  # nan and inf would poison every later step
            raise InputError(f"{f.name} must be a finite number, got {value!r}")

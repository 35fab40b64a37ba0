"""Detector backends: a batch of BGR images in, one `Detections` per image out.

Backends are found by name through the `vidpipe.detectors` entry-point group, so a package outside
vidpipe adds one by declaring an entry point; vidpipe's own backends register the same way. A backend
module imports its framework (torch, tensorflow) only when it is instantiated.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from ..detections import Detections
from ..errors import InputError

ENTRY_POINT_GROUP = "vidpipe.detectors"


@runtime_checkable
class Detector(Protocol):
    """What the pipeline needs from a backend, a class built as `Backend(settings: DetectorSettings)`."""

    default_model: ClassVar[str]  # what --model means when not given
    names: Sequence[str]  # class names, indexed by class id
    model: str  # the model actually loaded
    runtime: str  # what runs the model (openvino, onnx, torch, tensorflow...)
    precision: str  # the arithmetic it really uses (fp32, bf16...), which may differ from the one asked for

    @staticmethod
    def check() -> str | None:
        """Why the backend cannot run here (a missing framework), or None; cheap, loads no model."""
        ...

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detect objects in each image (H x W x 3 uint8 BGR); boxes in that image's pixels."""
        ...


@runtime_checkable
class StagedDetector(Protocol):
    """A backend split into steps the pipeline runs in separate stages: while the model works on one batch,
    the next is being prepared and the last one post-processed, and the model always has work queued.
    `detect(images)` is `collect(submit(prepare(images)))`."""

    def prepare(self, images: Sequence[np.ndarray]) -> object:
        """Everything before the model (resizing, normalising); may run in another thread than the rest."""
        ...

    def submit(self, prepared: object) -> object:
        """Start the model on a prepared batch and return without waiting for it."""
        ...

    def collect(self, submitted: object) -> list[Detections]:
        """Wait for a submitted batch and post-process it, in submission order."""
        ...


PRECISIONS = ("auto", "fp32", "bf16", "int8")


MAX_IMGSZ = 4096  # 4096 x 4096 x 3 floats is 200 MB of input tensor a frame; beyond it a model's memory explodes


@dataclass(frozen=True)
class DetectorSettings:
    """What every backend is built from. A setting that means nothing to a backend (`iou` for a model that
    suppresses overlaps itself) is ignored; a value it cannot honour is an InputError."""

    model: str | None = None  # None: the backend's default_model
    conf: float = 0.25
    iou: float = 0.7
    imgsz: int = 640
    device: str | None = None  # None: the backend picks
    classes: Sequence[str | int] | str | None = None  # names or ids; None: all
    runtime: str = "auto"
    precision: str = "auto"  # auto (int8 where gated and faster, else the runtime default) | fp32 | bf16 | int8
    threads: int | None = None  # cap on the backend's threads

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown precision {self.precision!r} (use {', '.join(PRECISIONS)})")
        for name in ("conf", "iou"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
        if not isinstance(self.imgsz, int) or isinstance(self.imgsz, bool) or not 32 <= self.imgsz <= MAX_IMGSZ:
            raise InputError(f"imgsz must be an integer from 32 to {MAX_IMGSZ} pixels, got {self.imgsz!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise InputError(f"threads must be at least 1, got {self.threads!r}")
        object.__setattr__(self, "classes", split_classes(self.classes))


def available() -> dict[str, EntryPoint]:
    """Installed backends by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_detector(name: str, settings: DetectorSettings | None = None, **overrides) -> Detector:
    """Backend `name` built from `settings` (default: DetectorSettings()) with `overrides` applied."""
    backends = available()
    if name not in backends:
        known = ", ".join(sorted(backends)) or "none installed"
        raise InputError(f"unknown detector {name!r} (available: {known})")
    try:
        backend = backends[name].load()
    except ImportError as exc:
        raise InputError(f"detector {name!r} cannot be imported: {exc}") from None
    return backend(replace(settings or DetectorSettings(), **overrides))


def split_classes(classes: Sequence[str | int] | str | None) -> list[str | int] | None:
    """A user's class list as a list: `"person, car"` -> `["person", "car"]`; None stays None (every class).
    An empty list is refused: it would silently keep nothing."""
    if classes is None:
        return None
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    elif not isinstance(classes, (list, tuple)) or not all(isinstance(c, (str, int)) and not isinstance(c, bool)
                                                          for c in classes):
        raise InputError(f"classes must be names or ids, as a list ([person, car]) or comma-separated text "
                         f"(person,car), got {classes!r}")
    if not classes:
        raise InputError("classes is empty: name at least one class (e.g. person,car), or leave it out to keep "
                         "every class")
    return list(classes)


def resolve_classes(classes: Sequence[str | int] | str | None, names: Sequence[str]) -> list[int] | None:
    """Class ids for a user's `person,car` / `0,2` / mixed list; None keeps every class."""
    classes = split_classes(classes)
    if classes is None:
        return None
    lookup = {name.lower(): i for i, name in enumerate(names)}
    ids: list[int] = []
    for item in classes:
        text = str(item).strip()
        if text.isdigit():
            if int(text) >= len(names):
                raise InputError(f"class id {text} is out of range: the model has {len(names)} classes")
            ids.append(int(text))
        elif text.lower() in lookup:
            ids.append(lookup[text.lower()])
        else:
            close = difflib.get_close_matches(text.lower(), lookup, n=3)
            hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
            raise InputError(f"unknown class {text!r}{hint}; the model's classes are: {', '.join(names)}")
    return sorted(set(ids))


def check_model_path(model: str | Path) -> None:
    """Fail early and clearly on a model path that does not exist.

    A bare file name (`yolo11n.pt`) is left to the backend, which may know how to download it.
    """
    path = Path(model)
    if not path.exists() and (path.parent != Path(".") or str(model).startswith(".")):
        raise InputError(f"model file {model} does not exist")

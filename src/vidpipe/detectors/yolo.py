"""YOLO through ultralytics: any model file ultralytics loads; PyTorch checkpoints run on a faster CPU runtime.

With `runtime="torch"` frames go through `YOLO.predict`. On a CPU the default (`auto`) exports the checkpoint
once to OpenVINO (or ONNX Runtime) and runs it with vidpipe's own letterbox and NMS, which reproduce
ultralytics' arithmetic: the same boxes, within the runtime's numerical precision.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from importlib.resources import files
from pathlib import Path

import numpy as np

from ..detections import Detections
from ..errors import missing_modules
from . import DetectorSettings, check_model_path, resolve_classes
from .appearance import LEVEL_STRIDES, pool
from .quantize import auto_precision, quantized
from .runtimes import SESSIONS, check_bf16, check_device, class_names, exported, load_ultralytics, resolve_runtime
from .yolo_ops import STRIDE, Letterbox, postprocess

log = logging.getLogger("vidpipe")
DEFAULT_MODEL = str(files("vidpipe.models") / "yolov8n.pt")  # bundled: the default run needs no network


@dataclass(frozen=True)
class Batch:
    """A batch between steps: per image shape, the images' positions, their letterbox (None on torch, which
    letterboxes inside `predict`) and what the step made of them (tensor, started requests, results)."""

    count: int
    groups: list[tuple[list[int], Letterbox | None, object]]

    def map(self, step: Callable[[Letterbox | None, object], object]) -> Batch:
        return Batch(self.count, [(indices, box, step(box, item)) for indices, box, item in self.groups])


class YoloDetector:
    """Ultralytics YOLO detection model; results equal `YOLO(model).predict` with the same settings."""

    default_model = DEFAULT_MODEL

    def __init__(self, settings: DetectorSettings = DetectorSettings()) -> None:
        model = str(settings.model or DEFAULT_MODEL)
        check_model_path(model)
        check_device(settings.device)
        if not Path(model).exists():  # a name (yolo11n.pt): ultralytics downloads it, or says why it cannot
            model = str(load_ultralytics(model).ckpt_path or model)
        self.model = model
        self.runtime = resolve_runtime(settings.runtime, settings.device, model, settings.precision)
        self.threads = settings.threads
        if self.runtime == "torch":
            self._yolo = load_ultralytics(model)
            if settings.threads:
                import torch

                torch.set_num_threads(settings.threads)
            names = self._yolo.names
            self.names = tuple(names[i] for i in range(len(names)))
            self.precision = "fp32"
        else:
            if settings.precision == "bf16":
                check_bf16()
            self.names = class_names(model)
            self.precision = settings.precision  # the session reports what the CPU really uses
        self.conf, self.iou, self.device = settings.conf, settings.iou, settings.device
        self.imgsz = math.ceil(settings.imgsz / STRIDE) * STRIDE  # as ultralytics' check_imgsz does
        if self.imgsz != settings.imgsz:
            log.warning("--imgsz %d is not a multiple of the model's stride (%d): using %d", settings.imgsz, STRIDE,
                        self.imgsz)
        self.classes = resolve_classes(settings.classes, self.names)
        self._precision_request = settings.precision
        self._model_path: Path | None = None  # the export every frame shape compiles from, made on first use
        self._sessions: dict[tuple[int, int], object] = {}
        self.embed = False  # whether each box also gets an appearance embedding (`enable_appearance`)
        self._maps: list[list[np.ndarray]] = []  # torch: per forward pass, the Detect head's maps (n, h, w, C)

    @staticmethod
    def check() -> str | None:
        """Why this backend cannot run here, or None when it can."""
        return "ultralytics is not installed" if missing_modules("ultralytics") else None

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        return self.collect(self.submit(self.prepare(images)))

    def prepare(self, images: Sequence[np.ndarray]) -> Batch:
        """Group the images by shape and letterbox each group into one tensor. Images of one shape go to the
        model together: ultralytics letterboxes a mixed-shape batch to a square, which would move boxes
        relative to predicting each image alone."""
        by_shape: dict[tuple, list[int]] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(i)
        groups = []
        for indices in by_shape.values():
            group = [images[i] for i in indices]
            if self.runtime == "torch":
                groups.append((indices, None, group))
            else:
                letterbox = Letterbox.fit(group[0].shape[:2], self.imgsz)
                groups.append((indices, letterbox, letterbox.tensor(group)))
        return Batch(len(images), groups)

    def submit(self, batch: Batch) -> Batch:
        """Start the exported model on each group; torch, whose API is synchronous, predicts in `collect`."""
        return batch.map(lambda box, inputs: partial(self._predict, inputs) if box is None
                         else self._session(box.shape).submit(inputs))

    def collect(self, batch: Batch) -> list[Detections]:
        results = batch.map(lambda box, result: result() if box is None else self._decode(result(), box))
        out: list[Detections | None] = [None] * batch.count
        for indices, _, group in results.groups:
            for i, (xyxy, score, class_id, *embedding) in zip(indices, group):
                out[i] = Detections(xyxy, score, class_id, self.names, embedding=embedding[0] if embedding else None)
        return out

    def enable_appearance(self) -> str | None:
        """Give every box an embedding from the model's own features (`appearance`) from now on; returns why
        this runtime cannot (None when it can). Sessions compiled without the extra outputs are dropped; on
        torch, the Detect head's inputs are caught on their way in (ultralytics' own re-id hook)."""
        if self.runtime == "torch":
            if len(getattr(self._yolo.model.model[-1], "stride", ())) != len(LEVEL_STRIDES):
                return f"{Path(self.model).name} has no YOLO Detect head to take features from"
            # `predict` runs a deep copy of the model, made on its first call: the hook goes on that copy.
            self._predict([np.zeros((STRIDE, STRIDE, 3), np.uint8)])
            self._yolo.predictor.model.model.model[-1].register_forward_pre_hook(self._catch_maps)
        self.embed = True
        self._sessions.clear()
        return None

    def _catch_maps(self, _module, inputs) -> None:
        """The torch Detect head's input maps of each forward pass, kept channels-last on the CPU."""
        self._maps.append([level.detach().float().permute(0, 2, 3, 1).cpu().numpy() for level in inputs[0]])

    def _decode(self, result, letterbox: Letterbox) -> list[tuple]:
        """Boxes from the raw outputs; with features, each box's embedding pooled from them too."""
        if not isinstance(result, tuple):
            return postprocess(result, letterbox, self.conf, self.iou, self.classes)
        prediction, maps = result
        return _with_embeddings(postprocess(prediction, letterbox, self.conf, self.iou, self.classes), maps, letterbox)

    @property
    def requests(self) -> int | None:
        """How many single-frame requests the runtime runs at once (OpenVINO's streams), once a model is
        compiled; None where frames are better sent as one batch (torch, a GPU)."""
        counts = [getattr(session, "requests", None) for session in self._sessions.values()]
        return next((n for n in counts if n), None)

    def _predict(self, images: list[np.ndarray]) -> list[tuple]:
        self._maps = []
        results = self._yolo.predict(images, conf=self.conf, iou=self.iou, imgsz=self.imgsz, device=self.device,
                                     classes=self.classes, verbose=False)
        boxes = [(r.boxes.xyxy.cpu().numpy(), r.boxes.conf.cpu().numpy(), r.boxes.cls.cpu().numpy()) for r in results]
        if not self.embed:
            return boxes
        # `predict` letterboxes a batch of one shape as vidpipe's Letterbox does (the smallest stride-multiple
        # rectangle): the boxes go back into the network's pixels to find their cells.
        # (The last passes are this batch's: on a GPU the first `predict` also warms the model up on zeros.)
        maps = [np.concatenate([caught[level] for caught in self._maps])[-len(images):] for level in range(3)]
        return _with_embeddings(boxes, [[level[k] for level in maps] for k in range(len(images))],
                                Letterbox.fit(images[0].shape[:2], self.imgsz))

    def _exported(self) -> Path:
        """The export for this runtime and precision; `auto` on OpenVINO may choose int8 (see `quantize`)."""
        if self._model_path is None:
            if self.runtime == "openvino" and self._precision_request == "auto":
                self._precision_request = auto_precision(self.model, self.threads).precision
            int8 = self._precision_request == "int8"
            self._model_path = quantized(self.model) if int8 else exported(self.model, self.runtime)
        return self._model_path

    def _session(self, shape: tuple[int, int]):
        if shape not in self._sessions:
            extra = {"features": True} if self.embed else {}
            session = SESSIONS[self.runtime](self._exported(), shape, self._precision_request, self.threads, **extra)
            if self.embed and not session.features:
                log.warning("appearance: %s has no YOLO Detect head to take features from; tracking by motion only",
                            Path(self.model).name)
                self.embed = False
            log.debug("%s compiled for %dx%d in %.0f ms", self.runtime, *shape, session.compile_ms)
            self._sessions[shape] = session
            self.precision = session.precision
        return self._sessions[shape]


def _with_embeddings(boxes: list[tuple], maps: list[list[np.ndarray]], letterbox: Letterbox) -> list[tuple]:
    """Each image's (xyxy, score, class_id) with its boxes' embeddings, pooled from that image's maps (one (h, w,
    C) per level) after taking the boxes back into the network's pixels."""
    top, _, left, _ = letterbox.padding
    return [(xyxy, score, class_id, pool(levels, xyxy * letterbox.gain + [left, top, left, top]))
            for (xyxy, score, class_id), levels in zip(boxes, maps)]

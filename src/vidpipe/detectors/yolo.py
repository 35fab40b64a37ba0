"""YOLO through ultralytics: any model file ultralytics loads; PyTorch checkpoints run on a faster CPU runtime.

With `runtime="torch"` frames go through `YOLO.predict`. On a CPU the default (`auto`) exports the checkpoint
once to OpenVINO (or ONNX Runtime) and runs it with vidpipe's own letterbox and NMS, which reproduce
ultralytics' arithmetic: the same boxes, within the runtime's numerical precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files

import numpy as np

from ..detections import Detections
from ..errors import missing_modules
from . import DetectorSettings, check_model_path, resolve_classes
from .runtimes import SESSIONS, class_names, exported, load_ultralytics, resolve_runtime
from .yolo_ops import Letterbox, postprocess

DEFAULT_MODEL = str(files("vidpipe.models") / "yolov8n.pt")  # bundled: the default run needs no network


class YoloDetector:
    """Ultralytics YOLO detection model; results equal `YOLO(model).predict` with the same settings."""

    default_model = DEFAULT_MODEL

    def __init__(self, settings: DetectorSettings = DetectorSettings()) -> None:
        model = str(settings.model or DEFAULT_MODEL)
        check_model_path(model)
        self.model = model
        self.runtime = resolve_runtime(settings.runtime, settings.device, model)
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
            self.names = class_names(model)
            self.precision = settings.precision  # the session reports what the CPU really uses
        self.conf, self.iou, self.imgsz, self.device = settings.conf, settings.iou, settings.imgsz, settings.device
        self._precision_request = settings.precision
        self.classes = resolve_classes(settings.classes, self.names)
        self._sessions: dict[tuple[int, int], object] = {}

    @staticmethod
    def check() -> str | None:
        """Why this backend cannot run here, or None when it can."""
        return "ultralytics is not installed" if missing_modules("ultralytics") else None

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Images of one shape go to the model together: ultralytics letterboxes a mixed-shape batch to a
        square, which would move boxes relative to predicting each image alone."""
        out: list[Detections | None] = [None] * len(images)
        by_shape: dict[tuple, list[int]] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(i)
        for indices in by_shape.values():
            group = [images[i] for i in indices]
            for i, (xyxy, score, class_id) in zip(indices, self._infer(group)):
                out[i] = Detections(xyxy, score, class_id, self.names)
        return out

    def _infer(self, images: list[np.ndarray]):
        if self.runtime == "torch":
            results = self._yolo.predict(images, conf=self.conf, iou=self.iou, imgsz=self.imgsz, device=self.device,
                                         classes=self.classes, verbose=False)
            return [(r.boxes.xyxy.cpu().numpy(), r.boxes.conf.cpu().numpy(), r.boxes.cls.cpu().numpy())
                    for r in results]
        letterbox = Letterbox.fit(images[0].shape[:2], self.imgsz)
        session = self._session(letterbox.shape)
        return postprocess(session(letterbox.tensor(images)), letterbox, self.conf, self.iou, self.classes)

    def _session(self, shape: tuple[int, int]):
        if shape not in self._sessions:
            path = exported(self.model, self.runtime, shape)
            session = SESSIONS[self.runtime](path, self._precision_request, self.threads)
            self._sessions[shape] = session
            self.precision = session.precision
        return self._sessions[shape]

"""YOLO through ultralytics: any model file ultralytics loads (.pt, exported formats, hub names)."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import numpy as np

from ..detections import Detections
from ..errors import InputError
from . import check_model_path, resolve_classes

DEFAULT_MODEL = str(files("vidpipe.models") / "yolov8n.pt")  # bundled: the default run needs no network


class YoloDetector:
    """Ultralytics YOLO detection model; results equal `YOLO(model).predict` with the same settings."""

    default_model = DEFAULT_MODEL

    def __init__(
        self,
        model: str | Path | None = None,
        conf: float = 0.25,
        iou: float = 0.7,
        imgsz: int = 640,
        device: str | None = None,
        classes: Sequence[str | int] | str | None = None,
        half: bool = False,
    ) -> None:
        os.environ.setdefault("YOLO_VERBOSE", "false")  # keep ultralytics' banners out of vidpipe's output
        from ultralytics import YOLO

        model = str(model or DEFAULT_MODEL)
        check_model_path(model)
        try:
            self._model = YOLO(model, task="detect")
        except Exception as exc:  # ultralytics raises many types for a bad file; all mean "unusable model"
            raise InputError(f"cannot load model {model}: {_first_line(exc)}") from None
        if getattr(self._model, "task", "detect") != "detect":
            raise InputError(f"model {model} is a {self._model.task} model; vidpipe needs a detection model")
        names = self._model.names
        self.names = tuple(names[i] for i in range(len(names)))
        self.model = model
        self._settings = dict(
            conf=conf,
            iou=iou,
            imgsz=imgsz,
            device=device,
            classes=resolve_classes(classes, self.names),
            half=half,
            verbose=False,
        )

    @staticmethod
    def check() -> str | None:
        """Why this backend cannot run here, or None when it can."""
        return None if importlib.util.find_spec("ultralytics") else "ultralytics is not installed"

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Images of one shape go to the model together: ultralytics letterboxes a mixed-shape batch to a
        square, which would move boxes relative to predicting each image alone."""
        out: list[Detections | None] = [None] * len(images)
        by_shape: dict[tuple, list[int]] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(i)
        for indices in by_shape.values():
            results = self._model.predict([images[i] for i in indices], **self._settings)
            for i, r in zip(indices, results):
                out[i] = Detections(
                    xyxy=r.boxes.xyxy.cpu().numpy(),
                    score=r.boxes.conf.cpu().numpy(),
                    class_id=r.boxes.cls.cpu().numpy(),
                    names=self.names,
                )
        return out


def _first_line(exc: Exception) -> str:
    """Ultralytics' message, first line, without its `ERROR ❌` decoration."""
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    return re.sub(r"^(ERROR)?[^\w/.'\"]*", "", text)

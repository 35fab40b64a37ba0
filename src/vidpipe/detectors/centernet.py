"""CenterNet (and other TF Object Detection exports) through tensorflow-hub.

The model contract, as real exports have it: input uint8 RGB `[1, H, W, 3]` of any size; outputs
`detection_boxes` `[1, N, 4]` normalised `[ymin, xmin, ymax, xmax]`, `detection_scores` `[1, N]`,
`detection_classes` `[1, N]` (floats holding COCO's 1-based category ids) and `num_detections` `[1]`.
Boxes become source pixels and ids become the same 80 COCO classes the YOLO backend uses. The model takes
one image at a time, so a batch runs frame by frame. TensorFlow is imported only when this class is built.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..detections import Detections
from ..errors import InputError, missing_modules
from . import DetectorSettings, resolve_classes
from .coco import CATEGORY_TO_CLASS, COCO_NAMES

DEFAULT_HANDLE = "https://tfhub.dev/tensorflow/centernet/hourglass_512x512/1"
EXTRA = "pip install 'vidpipe[centernet]'"


class CenterNetDetector:
    """A TF Hub detection model (default: CenterNet Hourglass-104 512x512, COCO)."""

    default_model = DEFAULT_HANDLE

    def __init__(self, settings: DetectorSettings = DetectorSettings()) -> None:
        """`iou` and `imgsz` do not apply: the model resizes its input and suppresses overlaps itself."""
        if settings.runtime not in ("auto", "tensorflow"):
            raise InputError(f"the centernet detector runs on TensorFlow; --runtime {settings.runtime} does not apply")
        if settings.precision not in ("auto", "fp32"):
            raise InputError(f"--precision {settings.precision} is for the yolo detector on OpenVINO; centernet "
                             "runs in fp32")
        self.runtime, self.precision = "tensorflow", "fp32"
        problem = self.check()
        if problem:
            raise InputError(problem)
        self._device = _tf_device(settings.device)
        self.model = handle = str(settings.model or DEFAULT_HANDLE)
        is_url = "://" in handle
        if not is_url and not Path(handle).is_dir():
            raise InputError(f"SavedModel directory {handle} does not exist")
        try:
            with _native_logs_silenced():
                self._tf, hub = _import_tensorflow()
                if settings.threads:
                    _limit_threads(self._tf, settings.threads)
                with self._tf.device(self._device):
                    loaded = hub.load(handle)
        except Exception as exc:  # noqa: BLE001 - tensorflow raises many types for the same "cannot use this model"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if is_url:
                raise InputError(f"cannot download {handle} ({reason}); offline, download it elsewhere and pass "
                                 f"the SavedModel directory: --model PATH") from None
            raise InputError(f"{handle} is not a loadable SavedModel ({reason})") from None
        self._call = _callable(loaded, handle)
        self.names = COCO_NAMES
        self.conf = settings.conf
        self._classes = resolve_classes(settings.classes, self.names)

    @staticmethod
    def check() -> str | None:
        """Why this backend cannot run here, or None when it can."""
        if missing_modules("tensorflow", "tensorflow_hub"):
            return f"the centernet detector needs TensorFlow and tensorflow-hub: {EXTRA}"
        return None

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> Detections:
        tf = self._tf
        with tf.device(self._device):
            out = self._call(tf.constant(np.ascontiguousarray(image[None, :, :, ::-1])))  # BGR -> RGB
        n = int(np.asarray(out["num_detections"]).reshape(-1)[0])
        boxes = np.asarray(out["detection_boxes"])[0, :n].astype(np.float64)
        scores = np.asarray(out["detection_scores"])[0, :n]
        categories = np.asarray(out["detection_classes"])[0, :n].astype(np.int64)
        return self.to_detections(boxes, scores, categories, image.shape[:2])

    def to_detections(self, boxes: np.ndarray, scores: np.ndarray, categories: np.ndarray,
                      shape: tuple[int, int]) -> Detections:
        """Normalised [ymin, xmin, ymax, xmax] and COCO category ids -> pixel xyxy and class indices."""
        height, width = shape
        valid = (categories >= 0) & (categories < len(CATEGORY_TO_CLASS))
        class_id = np.full(len(categories), -1)
        class_id[valid] = CATEGORY_TO_CLASS[categories[valid]]
        keep = (class_id >= 0) & (scores >= self.conf)
        if self._classes is not None:
            keep &= np.isin(class_id, self._classes)
        ymin, xmin, ymax, xmax = np.clip(boxes[keep], 0.0, 1.0).T
        xyxy = np.stack([xmin * width, ymin * height, xmax * width, ymax * height], axis=1)
        order = np.argsort(-scores[keep], kind="stable")
        return Detections(xyxy[order], scores[keep][order], class_id[keep][order], self.names)


def _import_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tensorflow-hub 0.16 imports the deprecated pkg_resources
        import tensorflow as tf
        import tensorflow_hub as hub
    # Importing triton after TensorFlow crashes the process (segmentation fault; both bundle LLVM), and
    # torch imports triton lazily, e.g. when torchvision loads for a YOLO model later in this process.
    # Inference needs no triton, so once TensorFlow is in, torch is told triton is not installed.
    sys.modules.setdefault("triton", None)
    return tf, hub


@contextlib.contextmanager
def _native_logs_silenced() -> Iterator[None]:
    """Hide what TensorFlow's C++ side prints straight to file descriptor 2 while it starts (oneDNN, CUDA
    probing, CPU features): TF_CPP_MIN_LOG_LEVEL no longer reaches those lines. VIDPIPE_DEBUG=1 shows them."""
    if os.environ.get("VIDPIPE_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _limit_threads(tf, threads: int) -> None:
    """Cap TensorFlow's thread pools (possible only before its first operation in this process)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow already started in this process with its own pools


def _tf_device(device: str | None) -> str | None:
    """vidpipe's device names (cpu, cuda, cuda:1, gpu) as TensorFlow's (/CPU:0, /GPU:1); None: TF decides."""
    if device is None:
        return None
    name = str(device).lower()
    if name == "cpu":
        return "/CPU:0"
    if name.startswith(("cuda", "gpu")):
        index = name.partition(":")[2] or "0"
        return f"/GPU:{index}"
    raise InputError(f"unknown device {device!r} for centernet (use cpu, cuda or cuda:N)")


def _callable(loaded, handle: str):
    """The model's `__call__` (TF Hub exports), else its serving signature."""
    if callable(loaded):
        return loaded
    signature = getattr(loaded, "signatures", {}).get("serving_default")
    if signature is None:
        raise InputError(f"{handle} has neither a __call__ function nor a serving_default signature")
    (input_name,) = signature.structured_input_signature[1]
    return lambda tensor: signature(**{input_name: tensor})

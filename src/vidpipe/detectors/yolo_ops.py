"""YOLO pre- and post-processing in numpy and OpenCV, for runtimes that take a plain tensor.

The same arithmetic as ultralytics' `LetterBox`, `non_max_suppression` and `scale_boxes`, so an exported
model fed by these functions gives the boxes `YOLO.predict` gives; whole batches at a time, no Python loop
over detections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114
SCALE = np.float32(1 / 255)  # uint8 pixels to [0, 1]
STRIDE = 32
MAX_WH = 7680  # class offset for class-aware NMS, larger than any box coordinate
MAX_NMS = 30_000  # candidates kept before NMS
MAX_DET = 300


@dataclass(frozen=True)
class Letterbox:
    """How a frame of `source` (h, w) maps into the network input `shape` (h, w)."""

    source: tuple[int, int]
    shape: tuple[int, int]

    @classmethod
    def fit(cls, source: tuple[int, int], imgsz: int, stride: int = STRIDE) -> Letterbox:
        """Scale the long side to `imgsz`, pad the short one to a multiple of `stride` (ultralytics' rect mode)."""
        h, w = source
        r = min(imgsz / h, imgsz / w)
        new_w, new_h = round(w * r), round(h * r)
        return cls(source, (new_h + (imgsz - new_h) % stride, new_w + (imgsz - new_w) % stride))

    @property
    def gain(self) -> float:
        return min(self.shape[0] / self.source[0], self.shape[1] / self.source[1])

    @property
    def resized(self) -> tuple[int, int]:
        return round(self.source[1] * self.gain), round(self.source[0] * self.gain)  # (w, h) for cv2

    @property
    def padding(self) -> tuple[int, int, int, int]:
        """top, bottom, left, right, split as ultralytics splits them."""
        w, h = self.resized
        dh, dw = (self.shape[0] - h) / 2, (self.shape[1] - w) / 2
        return round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)

    def tensor(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """BGR uint8 frames -> float32 NCHW RGB in [0, 1].

        Each resized frame's channels are scaled straight into their place in one tensor, and only the
        bands around them are filled: no padded copy and no temporaries. cv2.dnn.blobFromImages gives the
        same numbers, but its temporaries cost 4x the time on a pipeline thread (fresh pages each frame)."""
        top, bottom, left, right = self.padding
        w, h = self.resized
        out = np.empty((len(images), 3, *self.shape), np.float32)
        for band in (out[:, :, :top], out[:, :, top + h:], out[:, :, :, :left], out[:, :, :, left + w:]):
            band.fill(PAD_VALUE * SCALE)
        for k, image in enumerate(images):
            if image.shape[:2] != self.source:
                raise ValueError(f"frame of shape {image.shape[:2]} in a batch letterboxed for {self.source}")
            resized = image if (w, h) == (image.shape[1], image.shape[0]) else cv2.resize(
                image, (w, h), interpolation=cv2.INTER_LINEAR)
            for channel in range(3):  # RGB from BGR
                np.multiply(resized[:, :, 2 - channel], SCALE, out=out[k, channel, top:top + h, left:left + w])
        return out

    def to_source(self, xyxy: np.ndarray) -> np.ndarray:
        """Network-input boxes back to source pixels, clipped to the frame."""
        top, _, left, _ = self.padding
        boxes = (xyxy - [left, top, left, top]) / self.gain
        h, w = self.source
        return np.clip(boxes, 0, [w, h, w, h])


def postprocess(prediction: np.ndarray, letterbox: Letterbox, conf: float, iou: float,
                classes: Sequence[int] | None = None, max_det: int = MAX_DET):
    """YOLOv8-style output (batch, 4 + classes, anchors) -> per image (xyxy in source pixels, score, class).

    Class-aware greedy NMS as ultralytics does it: candidates above `conf`, at most MAX_NMS by score, boxes
    offset by class so classes never suppress each other, at most `max_det` kept.
    """
    results = []
    for pred in np.asarray(prediction, dtype=np.float32):
        scores_all = pred[4:]
        class_id = scores_all.argmax(axis=0)
        score = scores_all[class_id, np.arange(scores_all.shape[1])]
        keep = score > conf
        if classes is not None:
            keep &= np.isin(class_id, classes)
        xywh, score, class_id = pred[:4, keep].T, score[keep], class_id[keep]
        if len(score) > MAX_NMS:
            top = np.argsort(-score, kind="stable")[:MAX_NMS]
            xywh, score, class_id = xywh[top], score[top], class_id[top]
        xyxy = np.hstack([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2])
        kept = nms(xyxy + (class_id * MAX_WH)[:, None], score, iou)[:max_det]
        results.append((letterbox.to_source(xyxy[kept]), score[kept], class_id[kept]))
    return results


def nms(xyxy: np.ndarray, score: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first (OpenCV's implementation)."""
    if not len(score):
        return np.zeros(0, np.int64)
    xywh = np.hstack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]]).astype(np.float64)
    kept = cv2.dnn.NMSBoxes(xywh.tolist(), score.astype(np.float64).tolist(), 0.0, iou)
    kept = np.asarray(kept, dtype=np.int64).reshape(-1)
    return kept[np.argsort(-score[kept], kind="stable")]

"""Detection accuracy on images with YOLO-format labels: AP@0.5 and AP@0.5:0.95 by pycocotools (COCOeval).

Labels are `class cx cy w h` per line, normalised, in a tree that mirrors the images
(`images/val/x.jpg` <-> `labels/val/x.txt`); class numbers index the detector's class names.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..detections import Detections, box_iou, merge_duplicates
from ..detectors import Detector
from ..errors import InputError
from ..sources import IMAGE_SUFFIXES, natural_key, read_image_file
from . import line_of, read_numbers

LABEL_ROW = "a YOLO label line (class cx cy w h: five finite numbers)"


def labelled_images(images: str | Path, labels: str | Path) -> list[tuple[Path, Path]]:
    """(image, label file) pairs; an image without a label file has no objects."""
    images, labels = Path(images), Path(labels)
    for folder, what in ((images, "images"), (labels, "labels")):
        if not folder.is_dir():
            raise InputError(f"{folder} is not a folder of {what}")
    pairs = [(p, labels / p.relative_to(images).with_suffix(".txt"))
             for p in sorted(images.rglob("*"), key=lambda p: natural_key(str(p)))
             if p.suffix.lower() in IMAGE_SUFFIXES]
    if not pairs:
        raise InputError(f"{images} holds no images")
    if not any(label.is_file() for _, label in pairs):  # AP against nothing would be a meaningless 0
        raise InputError(f"{labels} has no label file for any image in {images} (YOLO format: "
                         f"labels/<same path>.txt beside images/<same path>.jpg)")
    objects = sum(len(label_rows(label)) for _, label in pairs if label.is_file())  # every file checked up front
    if not objects:
        raise InputError(f"the label files in {labels} hold no object: there is nothing to score against")
    return pairs


def label_rows(path: Path) -> np.ndarray:
    """The rows of one YOLO label file, (n, 5): `class cx cy w h`, a whole class >= 0 and a box of positive
    size; a line that is not is an error naming the file and the line."""
    rows = read_numbers(path, LABEL_ROW, min_columns=5)
    if rows.size and rows.shape[1] != 5:
        raise InputError(f"{path} is not a YOLO label file: {rows.shape[1]} numbers a line, where "
                         f"`class cx cy w h` has 5")
    rows = rows.reshape(-1, 5)
    bad = np.flatnonzero((rows[:, 0] != np.round(rows[:, 0])) | (rows[:, 0] < 0) | (rows[:, 3] <= 0)
                         | (rows[:, 4] <= 0))
    if len(bad):
        raise InputError(f"{path}, line {line_of(path, bad[0])} ({' '.join(f'{v:g}' for v in rows[bad[0]])}): the "
                         f"class must be a whole number >= 0 and the box's width and height positive")
    return rows


def read_labels(path: Path, width: int, height: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel xywh (top-left) boxes and class ids of one YOLO label file (none where there is no file)."""
    if not path.is_file():
        return np.zeros((0, 4)), np.zeros(0, np.int64)
    rows = label_rows(path)
    class_id = rows[:, 0].astype(np.int64)
    if len(class_id) and class_id.max() >= classes:
        raise InputError(f"{path}: class {class_id.max()} is not one of the detector's {classes} classes")
    centre, size = rows[:, 1:3] * [width, height], rows[:, 3:5] * [width, height]
    return np.hstack([centre - size / 2, size]), class_id


def evaluate(detector: Detector, pairs: list[tuple[Path, Path]], progress: bool = True,
             merge_iou: float = 0.0) -> dict:
    """Run `detector` on every image and score it against the labels with COCOeval; with `merge_iou`, boxes of
    two classes that alike are merged first, as a tracked run merges them (to measure what that costs)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, (image_path, label_path, image) in enumerate(_read(pairs, progress), start=1):
        height, width = image.shape[:2]
        images.append({"id": image_id, "width": width, "height": height, "file_name": str(image_path)})
        boxes, class_ids = read_labels(label_path, width, height, len(detector.names))
        annotations += [{"id": len(annotations) + k + 1, "image_id": image_id, "category_id": int(c) + 1,
                         "bbox": box.tolist(), "area": float(box[2] * box[3]), "iscrowd": 0}
                        for k, (box, c) in enumerate(zip(boxes, class_ids))]
        (detections,) = detector.detect([image])
        detections = merge_duplicates(detections, merge_iou)
        xywh = np.hstack([detections.xyxy[:, :2], detections.xyxy[:, 2:] - detections.xyxy[:, :2]])
        results += [{"image_id": image_id, "category_id": int(c) + 1, "bbox": box.tolist(), "score": float(s)}
                    for box, c, s in zip(xywh, detections.class_id, detections.score)]
    truth = COCO()
    truth.dataset = {"images": images, "annotations": annotations,
                     "categories": [{"id": i + 1, "name": n} for i, n in enumerate(detector.names)]}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth.createIndex()
        if results:
            evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
    stats = evaluation.stats if results else np.zeros(12)
    return {
        "images": len(images),
        "objects": len(annotations),
        "detections": len(results),
        "AP50": 100 * max(float(stats[1]), 0.0),
        "AP50_95": 100 * max(float(stats[0]), 0.0),
    }


def _read(pairs: list[tuple[Path, Path]], progress: bool) -> Iterator[tuple[Path, Path, np.ndarray]]:
    for image_path, label_path in tqdm(pairs, unit="image", disable=not progress, desc="eval det"):
        image = read_image_file(str(image_path))
        if image is None:
            raise InputError(f"{image_path} is not a readable image")
        yield image_path, label_path, image


def agreement(reference: Sequence[Detections], candidate: Sequence[Detections],
              iou: float = 0.8) -> tuple[int, int, int]:
    """How two runs over the same frames agree: boxes matched one to one (same class, IoU >= `iou`), and
    each run's box count. A runtime or precision change keeps the detections when both shares are high."""
    from scipy.optimize import linear_sum_assignment

    matched = total_reference = total_candidate = 0
    for ref, cand in zip(reference, candidate, strict=True):
        overlap = box_iou(ref.xyxy, cand.xyxy) * (ref.class_id[:, None] == cand.class_id[None, :])
        if overlap.size:
            rows, cols = linear_sum_assignment(-overlap)
            matched += int((overlap[rows, cols] >= iou).sum())
        total_reference, total_candidate = total_reference + len(ref), total_candidate + len(cand)
    return matched, total_reference, total_candidate

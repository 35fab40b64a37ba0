"""MOTChallenge sequences on disk: `seqinfo.ini`, `det/det.txt`, `gt/gt.txt`, `img1/`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..detections import Detections
from ..errors import InputError
from ..frames import Frame
from ..sources import read_seqinfo
from . import line_of, read_numbers

PEDESTRIAN = ("person",)  # MOTChallenge detections are people: class 0 of the COCO names
NO_IMAGE = np.zeros((0, 0, 3), np.uint8)  # frames known only by index and time (det.txt tracking)


@dataclass(frozen=True)
class MotSequence:
    """One sequence folder. `length` and `fps` come from `seqinfo.ini` (here or one folder up, as for a
    `mini/` excerpt), else from the images or the files themselves."""

    name: str
    path: Path
    fps: float
    length: int
    benchmark: str = "MOT17"  # MOT15: 2D MOT 2015's ground truth, with no classes (-1 in the class column)
    size: tuple[int, int] | None = None  # the pictures' (width, height), from seqinfo.ini, where it says

    @property
    def gt_file(self) -> Path:
        return self.path / "gt" / "gt.txt"

    @property
    def det_file(self) -> Path:
        return self.path / "det" / "det.txt"

    @property
    def image_dir(self) -> Path:
        return self.path / "img1"

    @classmethod
    def open(cls, path: str | Path, need_images: bool = False) -> MotSequence:
        path = Path(path)
        if not path.is_dir():
            raise InputError(f"{path} is not a MOTChallenge sequence folder")
        if not (path / "gt" / "gt.txt").is_file():
            raise InputError(f"{path} has no gt/gt.txt to score against")
        gt = read_mot_file(path / "gt" / "gt.txt")
        if not len(gt):
            raise InputError(f"{path / 'gt' / 'gt.txt'} has no ground truth: there is nothing to score against")
        ini, info = read_seqinfo(path)
        name = path.name if ini is None or ini.parent == path else ini.parent.name
        fps = _positive(info["framerate"], ini, "frameRate", whole=False) if "framerate" in info else 30.0
        images = sorted((path / "img1").glob("*.jpg")) + sorted((path / "img1").glob("*.png"))
        if need_images and not images:
            raise InputError(f"{path} has no img1/ images to detect on")
        if images and (need_images or ini is None or ini.parent != path):
            length, counted = len(images), "the images in img1/"  # an excerpt: only the frames that are here
        elif "seqlength" in info:
            length, counted = int(_positive(info["seqlength"], ini, "seqLength", whole=True)), f"{ini}'s seqLength"
        else:
            length, counted = int(gt[:, 0].max()), ""
        _check_within(gt, length, path / "gt" / "gt.txt", counted)
        size = None
        if "imwidth" in info and "imheight" in info:
            size = (int(_positive(info["imwidth"], ini, "imWidth", whole=True)),
                    int(_positive(info["imheight"], ini, "imHeight", whole=True)))
        return cls(name, path, fps, length, ground_truth_format(gt), size)

    def detections(self) -> Iterator[tuple[Frame, Detections]]:
        """Every frame (0-based index, time from the frame rate) with its det.txt boxes as `person`."""
        if not self.det_file.is_file():
            raise InputError(f"{self.path} has no det/det.txt (use --detect to detect on its images)")
        rows = read_mot_file(self.det_file)
        if not len(rows):
            raise InputError(f"{self.det_file} has no detections: nothing to track (use --detect to detect on the "
                             f"images)")
        rows = rows[rows[:, 0] <= self.length]
        order = np.argsort(rows[:, 0], kind="stable")
        rows = rows[order]
        starts = np.searchsorted(rows[:, 0], np.arange(1, self.length + 2))
        for index in range(self.length):
            frame_rows = rows[starts[index] : starts[index + 1]]
            xywh = frame_rows[:, 2:6]
            boxes = np.hstack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])
            yield (Frame(index, index / self.fps, NO_IMAGE),
                   Detections(boxes, frame_rows[:, 6], np.zeros(len(frame_rows), np.int64), PEDESTRIAN))


def ground_truth_format(rows: np.ndarray) -> str:
    """MOT15 where the ground truth rows have no classes (2D MOT 2015: -1 in the class column, as in TUD-Campus,
    PETS09, ETH), else MOT17 (MOT16/17/20: classes, distractors and the consider flag)."""
    if rows.shape[1] >= 8 and len(rows) and (rows[:, 7] == -1).all():
        return "MOT15"
    return "MOT17"


MOT_ROW = "a MOTChallenge row (frame, id, x, y, w, h, score, ...: finite numbers, at least 6)"


def read_mot_file(path: str | Path) -> np.ndarray:
    """A MOTChallenge text file as a float array, one row per line (no rows: shape (0, 10)); a malformed line
    (not numbers, NaN, too few columns, a frame below 1, a negative box size) is an error naming it."""
    path = Path(path)
    rows = read_numbers(path, MOT_ROW, delimiter=",", min_columns=6)
    if not len(rows):
        return np.zeros((0, 10))
    bad = np.flatnonzero((rows[:, 0] < 1) | (rows[:, 4] < 0) | (rows[:, 5] < 0))
    if len(bad):
        row = rows[bad[0]]
        raise InputError(f"{path}, line {line_of(path, bad[0])} ({', '.join(f'{v:g}' for v in row[:6])}): frames "
                         f"count from 1 and box sizes cannot be negative")
    return rows


def _check_within(rows: np.ndarray, length: int, path: Path, what: str) -> None:
    """Ground truth on a frame past the sequence's end is one line naming it (TrackEval would raise its own
    traceback)."""
    past = np.flatnonzero(rows[:, 0] > length)
    if len(past):
        raise InputError(f"{path}, line {line_of(path, past[0])}: frame {rows[past[0], 0]:g} is past the sequence's "
                         f"last frame, {length} ({what})")


def _positive(text: str, ini: Path | None, key: str, whole: bool) -> float:
    """A seqinfo.ini figure (seqLength, frameRate): a finite number above zero (whole for counts), else one line
    naming it."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0 and (not whole or value == int(value))):
        raise InputError(f"{ini}: {key} must be a {'whole ' if whole else ''}number above 0, got {text!r}")
    return value

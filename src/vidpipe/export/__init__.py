"""`vidpipe export`: a run's (or a corpus's) boxes as the files labeling and training tools open.

Each format is one module here with a `Writer` behind the `Writer` protocol: the image formats (COCO, YOLO)
get the exact pictures the detector saw, decoded again from the source and written as JPEG; the track
formats (CVAT for video, MOT, Label Studio) go with the video itself, which the tool opens. Everything is
written under a hidden folder beside `dest` and renamed when complete, so an export cut short is never
mistaken for one.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from ..errors import InputError

FORMATS = {"coco": "coco", "yolo": "yolo", "cvat-video": "cvat", "mot": "mot",
           "label-studio": "label_studio"}  # --to: its module
JPEG_QUALITY = 95


class Writer(Protocol):
    """One export format: fed each video's rows (and, for image formats, where its pictures were written)."""

    images: bool  # whether it needs the frames as JPEG files

    def __init__(self, folder: Path, root: Path) -> None:
        """`folder`: where to write now; `root`: where the export will be (absolute image paths name it)."""
        ...

    def add(self, run, split: str, pictures: Mapping[int, tuple[str, tuple[int, int]]]) -> None:
        """One video; `pictures` maps a frame to its image's path relative to the export and its size."""
        ...

    def close(self) -> dict:
        """Write what is left; the counts (`images`, `boxes`, `tracks`) for the user."""
        ...


def export(out: str | Path, to: str, dest: str | Path, *, min_score: float = 0.0, classes: Sequence[str] = (),
           every: int = 1, split: str | None = None, absolute: bool = False, confirmed_only: bool = False,
           progress: bool = True) -> dict:
    """Export the run or corpus at `out` to format `to` in `dest` (new, or empty); returns the counts."""
    from .runs import assign_splits, check_source, find_runs, load_run

    if to not in FORMATS:
        raise InputError(f"--to must be one of {', '.join(FORMATS)}, got {to!r}")
    if every < 1 or not 0 <= min_score <= 1:
        raise InputError(f"--every must be at least 1 and --min-score from 0 to 1, got {every} and {min_score}")
    out, dest = Path(out), Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InputError(f"--dest {dest} exists and is not an empty folder")
    runs = [load_run(video_id, folder, min_score, list(classes), every, confirmed_only)
            for video_id, folder in find_runs(out)]
    if not sum(len(run.rows) for run in runs):
        filtered = min_score or classes or confirmed_only
        raise InputError(f"{out}: nothing to export: no boxes" + (" pass the filters" if filtered else ""))
    module = importlib.import_module(f".{FORMATS[to]}", __name__)
    splits = assign_splits([run.video_id for run in runs], split)
    sources = {run.video_id: check_source(run) for run in runs} if module.Writer.images else {}
    staging = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        writer = module.Writer(staging, dest.resolve() if absolute else Path())
        with _bar(sum(len(run.frames) for run in runs) if module.Writer.images else 0, progress) as bar:
            for run in runs:
                pictures = (_write_pictures(run, sources[run.video_id], staging, splits[run.video_id], bar)
                            if module.Writer.images else {})
                writer.add(run, splits[run.video_id], pictures)
        counts = writer.close()
        if dest.exists():
            dest.rmdir()
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return counts


def _bar(total: int, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="export", disable=not (progress and total), dynamic_ncols=True)


def _write_pictures(run, source: str, folder: Path, split: str, bar) -> dict[int, tuple[str, tuple[int, int]]]:
    """Decode the run's frames again and write them as `images/[<split>/]<video>/<frame>.jpg`."""
    import cv2

    from .runs import pictures

    written = {}
    base = Path("images", split, run.video_id) if split else Path("images", run.video_id)
    (folder / base).mkdir(parents=True, exist_ok=True)
    for index, image in pictures(run, source, run.frames):
        name = str(base / f"{index:06d}.jpg")
        if not cv2.imwrite(str(folder / name), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f"cannot write {folder / name}")
        written[index] = (name, (image.shape[1], image.shape[0]))
        bar.update(1)
    missing = len(run.frames) - len(written)
    if missing:
        raise InputError(f"{run.folder}: {missing} of its frames could not be decoded again from {source}")
    return written

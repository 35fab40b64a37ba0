"""Tracking metrics under MOTChallenge rules, computed by the maintained reference tools.

HOTA, DetA and AssA come from TrackEval; MOTA, IDF1, ID switches and Frag (a ground-truth track's coverage
interrupted) from py-motmetrics (its `CLEAR_MOT_M`: pedestrians only, ground truth with the consider flag 0
ignored, predictions matched to distractors removed, IoU 0.5). Both read the files as MOTChallenge submissions are read.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..detections import Detections
from ..errors import InputError
from ..frames import Frame
from ..sinks import MotSink
from ..tracking import Tracker
from .motchallenge import MotSequence

COMBINED = "COMBINED"
COLUMNS = ["sequence", "frames", "HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "Frag", "FP", "FN", "ms_per_frame"]


@dataclass(frozen=True)
class TrackedSequence:
    """A sequence with the tracks a tracker produced for it (a MOTChallenge txt file)."""

    sequence: MotSequence
    tracks_file: Path
    frames: int
    tracker_seconds: float  # time spent inside tracker.update, summed over frames

    @property
    def ms_per_frame(self) -> float:
        return 1000 * self.tracker_seconds / max(self.frames, 1)


def every_kth(stream: Iterable[tuple[Frame, Detections]], k: int) -> Iterator[tuple[Frame, Detections | None]]:
    """The stream with the detections of all but every `k`th frame withheld (None): the tracker must predict
    those frames, as with `--detect-every k`; every frame is still scored."""
    for i, (frame, detections) in enumerate(stream):
        yield frame, detections if i % k == 0 else None


def track(sequence: MotSequence, tracker: Tracker, stream: Iterable[tuple[Frame, Detections | None]],
          tracks_file: str | Path) -> TrackedSequence:
    """Run `tracker` over a sequence's frames and detections (None: a frame the detector skipped, which the
    tracker predicts); write its tracks as MOTChallenge txt."""
    sink = MotSink(tracks_file)
    elapsed, frames = 0.0, 0
    try:
        for frame, detections in stream:
            start = time.perf_counter()
            if detections is None:
                tracked = tracker.predict(frame.time)
            else:
                tracked = tracker.update(detections, frame.time, frame.size or sequence.size)
            elapsed += time.perf_counter() - start
            sink.write(frame, tracked)
            frames += 1
    except BaseException:
        sink.abort()
        raise
    sink.close()
    return TrackedSequence(sequence, Path(tracks_file), frames, elapsed)


def score(runs: list[TrackedSequence]) -> pd.DataFrame:
    """One row per sequence plus a COMBINED row (metrics in percent, as MOTChallenge reports them)."""
    hota = _trackeval_hota(runs)
    clear = _motmetrics_clear(runs)
    rows = []
    for name in [r.sequence.name for r in runs] + [COMBINED]:
        selected = runs if name == COMBINED else [r for r in runs if r.sequence.name == name]
        frames = sum(r.frames for r in selected)
        rows.append({
            "sequence": name,
            "frames": frames,
            **hota[name],
            **clear[name],
            "ms_per_frame": 1000 * sum(r.tracker_seconds for r in selected) / max(frames, 1),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def _benchmark(runs: list[TrackedSequence]) -> str:
    """MOT15 or MOT17 rules for the whole call: TrackEval scores one benchmark's rules at a time."""
    kinds = {run.sequence.benchmark for run in runs}
    if len(kinds) > 1:
        raise InputError("these sequences mix 2D MOT 2015 ground truth (no classes) with MOT16/17's; score them "
                         "in separate calls")
    return kinds.pop()


def _trackeval_hota(runs: list[TrackedSequence]) -> dict[str, dict[str, float]]:
    import trackeval

    with tempfile.TemporaryDirectory(prefix="vidpipe-trackeval-") as tmp:
        gt_root, trackers_root = Path(tmp) / "gt", Path(tmp) / "trackers"
        for run in runs:
            seq_dir = gt_root / run.sequence.name
            (seq_dir / "gt").mkdir(parents=True)
            os.symlink(run.sequence.gt_file.resolve(), seq_dir / "gt" / "gt.txt")
            _write_seqinfo(seq_dir / "seqinfo.ini", run.sequence)
            data = trackers_root / "vidpipe" / "data"
            data.mkdir(parents=True, exist_ok=True)
            os.symlink(run.tracks_file.resolve(), data / f"{run.sequence.name}.txt")
        dataset = trackeval.datasets.MotChallenge2DBox({
            "GT_FOLDER": str(gt_root),
            "TRACKERS_FOLDER": str(trackers_root),
            "TRACKERS_TO_EVAL": ["vidpipe"],
            "SKIP_SPLIT_FOL": True,
            "SEQ_INFO": {run.sequence.name: run.sequence.length for run in runs},
            "BENCHMARK": _benchmark(runs),  # MOT15: no class preprocessing, as TrackEval scores that benchmark
            "PRINT_CONFIG": False,
        })
        evaluator = trackeval.Evaluator({
            "USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False, "TIME_PROGRESS": False,
            "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False, "DISPLAY_LESS_PROGRESS": True,
            "BREAK_ON_ERROR": True, "RETURN_ON_ERROR": False, "LOG_ON_ERROR": None,
        })
        with contextlib.redirect_stdout(io.StringIO()):  # TrackEval narrates every step
            results, _ = evaluator.evaluate([dataset], [trackeval.metrics.HOTA()])
    per_sequence = results["MotChallenge2DBox"]["vidpipe"]
    out = {}
    for name, result in per_sequence.items():
        metrics = result["pedestrian"]["HOTA"]
        out[COMBINED if name == "COMBINED_SEQ" else name] = {
            key: 100 * float(np.mean(metrics[key])) for key in ("HOTA", "DetA", "AssA")
        }
    return out


def _motmetrics_clear(runs: list[TrackedSequence]) -> dict[str, dict[str, float]]:
    mm = _import_motmetrics()
    accumulators, names = [], []
    with tempfile.TemporaryDirectory(prefix="vidpipe-motmetrics-") as tmp:
        for run in runs:
            ini = Path(tmp) / f"{run.sequence.name}.ini"
            _write_seqinfo(ini, run.sequence)
            with warnings.catch_warnings():  # motmetrics 1.4 uses a pandas idiom pandas 3 deprecates
                warnings.simplefilter("ignore")
                gt = mm.io.loadtxt(str(run.sequence.gt_file), fmt="mot15-2D")
                hypotheses = mm.io.loadtxt(str(run.tracks_file), fmt="mot15-2D")
            if run.sequence.benchmark == "MOT15":  # no classes to filter on: score every box the gt considers
                accumulator = mm.utils.compare_to_groundtruth(gt[gt["Confidence"] != 0], hypotheses, "iou",
                                                              distth=0.5)
            else:
                accumulator, _ = mm.utils.CLEAR_MOT_M(gt, hypotheses, str(ini), "iou", distth=0.5)
            accumulators.append(accumulator)
            names.append(run.sequence.name)
    summary = mm.metrics.create().compute_many(
        accumulators, names=names,
        metrics=["mota", "idf1", "num_switches", "num_fragmentations", "num_false_positives", "num_misses"],
        generate_overall=True,
    )
    return {
        (COMBINED if name == "OVERALL" else name): {
            "MOTA": 100 * float(row["mota"]),
            "IDF1": 100 * float(row["idf1"]),
            "IDSW": int(row["num_switches"]),
            "Frag": int(row["num_fragmentations"]),
            "FP": int(row["num_false_positives"]),
            "FN": int(row["num_misses"]),
        }
        for name, row in summary.iterrows()
    }


def _import_motmetrics():
    """py-motmetrics 1.4.0 (its latest release) calls `np.asfarray`, which NumPy 2 removed; its IoU module
    gets a NumPy namespace that still has it, and nothing else in the process is touched."""
    import types

    import motmetrics as mm

    if not hasattr(mm.distances.np, "asfarray"):
        compat = types.ModuleType("numpy")
        compat.__dict__.update(np.__dict__)
        compat.asfarray = lambda a, dtype=np.float64: np.asarray(a, dtype=dtype)
        mm.distances.np = compat
    return mm


def _write_seqinfo(path: Path, sequence: MotSequence) -> None:
    path.write_text(f"[Sequence]\nname={sequence.name}\nframeRate={sequence.fps:g}\nseqLength={sequence.length}\n")

"""What camera motion costs each tracker, measured without labels.

A fixed-camera clip is seen through a smaller window twice: once held still, once moving along a known path
(a pan of about 100 px back and forth every 4 s, plus a few pixels of hand-held shake every frame). The
detector runs once, on the full frames; each window gets those detections moved into its pixels, so the
still and the moving window differ by the motion alone. Every tracker gets the same detections (people) and
the window's frames (for its motion estimate):

- vidpipe's ByteTrack with camera-motion compensation off, on, and auto (`--camera-motion`);
- ultralytics' ByteTrack, and its BoT-SORT with its own GMC (sparse optical flow; no ReID), as `yolo track`
  builds them.

Each tracker's own run on the full frame is its truth. The window runs' boxes are shifted back by the
window's offset and scored against that truth (py-motmetrics: IDF1, ID switches, IoU 0.5), both restricted
to boxes whose centre lies well inside the window. The gap between the still and the moving window is what
camera motion costs that tracker.

One moving window decides little: a tracker's identities hang on a few near-ties (two lost tracks at the
window's edge that overlap a returning box about equally), which a tenth of a pixel can flip. So the moving
window takes `--paths` different shakes (seeds) and the table gives their mean (and range). The whole
comparison is also made on every `--every`th frame (5 and 1 fps from a 30 fps clip: sampled corpora), where
the picture moves several pixels between the frames a tracker sees.

With `--labelled`, the same comparison is also scored against people's labels: MOTChallenge sequences filmed
by a fixed camera, their det.txt boxes and gt.txt tracks moved into a window over their first frame
(`labelled`). A tracker's own run as the truth rewards it for repeating its own near-ties, which a moving
window cannot; labels have no such bias.

    pip install -e '.[bench]'
    python bench/camera_motion.py ../shared/sample_videos/walkway-pedestrians.mp4 [--paths 4] [--every 1 6 30] \
        [--labelled ../shared/data/mot/MOT17/train/MOT17-{02,04,09}]

ID switches the motion adds (moving minus still window; in brackets the moving windows' IDF1), `--paths 2
--every 1 6`, 2026-12-06, 2-core AMD EPYC (AVX-512 VNNI + bf16, no AMX); vidpipe with `--camera-motion auto`
matching every track by its expected box cut by the picture's border (2026-12-01), and lost tracks by their
whole expected box (since 2026-12-06), against ultralytics' BoT-SORT with its GMC:

| design | rate | vidpipe, cut boxes | vidpipe, lost tracks whole | BoT-SORT |
|---|---|---|---|---|
| label-free (walkway-pedestrians.mp4) | 30 fps | +0.0 (84.16) | +1.0 (86.32) | +1.5 (89.55) |
| | 5 fps | -5.0 (96.42) | -5.0 (96.25) | +2.5 (75.91) |
| labelled (MOT17-02, -04, -09) | 30 fps | +21.5 (56.20) | +19.5 (57.92) | +98.0 (45.85) |
| | 5 fps | +11.0 (56.24) | +14.0 (55.29) | +70.0 (49.91) |
"""

from __future__ import annotations

import argparse
import math
import time
from functools import partial
from pathlib import Path

import numpy as np
from machine import describe

from vidpipe.detections import Detections, box_iou
from vidpipe.detectors import load_detector
from vidpipe.detectors.coco import COCO_NAMES
from vidpipe.sources import open_source
from vidpipe.tracking import ByteTrack, CameraMotion

PERSON = COCO_NAMES.index("person")
MARGIN = 16  # px: a box counts when its centre lies this far inside the window


def window_path(frames: int, fps: float, room: tuple[int, int], seed: int = 0) -> np.ndarray:
    """(frames, 2) top-left corners of the moving window: a pan over `room[0]` px and back every 4 s, plus
    a bounded random walk of shake (a few px a frame); the still window sits at the pan's middle."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    pan = (room[0] - 8) / 2 * (1 - np.cos(2 * math.pi * t / 4.0)) + 4
    shake = np.clip(np.cumsum(rng.normal(0, 1.5, (frames, 2)), axis=0), -4, 4)
    return np.stack([pan + shake[:, 0], room[1] / 2 + shake[:, 1]], axis=1).round().astype(int)


class Ultralytics:
    """ultralytics' BYTETracker or BOTSORT with its tracker YAML's defaults (BoT-SORT's GMC included), its
    lost-track buffer kept in seconds at a sampled rate, as vidpipe's is."""

    def __init__(self, kind: str, fps: float) -> None:
        from ultralytics.trackers.bot_sort import BOTSORT
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        args = IterableSimpleNamespace(**YAML.load(check_yaml(f"{kind}.yaml")))
        if kind == "botsort":
            args.with_reid = False
        args.track_buffer = max(1, round(args.track_buffer * fps / 30))  # frames at 30 fps: the same seconds
        self.kind, self._tracker = kind, (BOTSORT if kind == "botsort" else BYTETracker)(args)

    def __call__(self, image: np.ndarray, time_s: float, detections: Detections) -> tuple[np.ndarray, np.ndarray]:
        from ultralytics.engine.results import Boxes

        data = np.hstack([detections.xyxy, detections.score[:, None], detections.class_id[:, None]])
        out = np.asarray(self._tracker.update(Boxes(data, orig_shape=image.shape[:2]), image)).reshape(-1, 8)
        return out[:, :4], out[:, 4].astype(int)


class Vidpipe:
    """vidpipe's ByteTrack, with `--camera-motion` off, on or auto; or (`path`) fed the window's exact motion."""

    def __init__(self, mode: str, fps: float, path: np.ndarray | None = None) -> None:
        self.mode, self._tracker, self._motion = mode, ByteTrack(fps=fps), CameraMotion(mode)
        self._path, self._frame = path, 0

    def __call__(self, image: np.ndarray, time_s: float, detections: Detections) -> tuple[np.ndarray, np.ndarray]:
        affine = self._motion(image, time_s) if self._path is None else exact_motion(self._path, self._frame)
        self._frame += 1
        if affine is not None:
            self._tracker.warp(affine)
        tracked = self._tracker.update(detections, time_s, (image.shape[1], image.shape[0]))
        self._motion.exclude(detections.xyxy)  # as vidpipe's pipeline does
        return tracked.xyxy, tracked.track_id

    @property
    def ms_per_frame(self) -> float:
        return 1000 * self._motion.profile.busy_s / max(self._motion.profile.items, 1)


def exact_motion(path: np.ndarray, frame: int) -> np.ndarray | None:
    """The window's true motion into `frame`: the picture moves opposite to the window."""
    if frame == 0 or not (path[frame] - path[frame - 1]).any():
        return None
    dx, dy = -(path[frame] - path[frame - 1]).astype(float)
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


def estimate_errors(estimate, images: list[np.ndarray], times: list[float], found: list[Detections],
                    path: np.ndarray) -> np.ndarray:
    """Per frame, how far (px, the larger axis) an estimator's shift is from the window's true motion."""
    errors = []
    for i, (image, detections) in enumerate(zip(images, found)):
        affine = estimate(image, times[i], detections)
        true = exact_motion(path, i)
        errors.append(np.abs((np.zeros(2) if affine is None else affine[:, 2])
                             - (np.zeros(2) if true is None else true[:, 2])).max())
    return np.array(errors[1:])


def vidpipe_estimate(leave_out_objects: bool):
    motion = CameraMotion("on")

    def estimate(image, time_s, detections):
        affine = motion(image, time_s)
        if leave_out_objects:
            motion.exclude(detections.xyxy)
        return affine
    return estimate


def ultralytics_estimate():
    from ultralytics.trackers.utils.gmc import GMC

    gmc = GMC("sparseOptFlow")  # BoT-SORT's default in ultralytics
    return lambda image, time_s, detections: gmc.apply(image)


def in_window(detections: Detections, corner: np.ndarray, size: tuple[int, int]) -> Detections:
    """The detections as the window sees them: in its pixels, clipped to it, those whose centre is outside
    dropped."""
    xyxy = detections.xyxy - np.tile(corner, 2)
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    keep = ((centre >= 0) & (centre < size)).all(axis=1)
    clipped = np.clip(xyxy[keep], 0, np.tile(size, 2))
    return Detections(clipped, detections.score[keep], detections.class_id[keep], detections.names)


def track(make, frames: list[np.ndarray], times: list[float], detections: list[Detections]) -> list:
    tracker = make()
    return [tracker(image, t, d) for image, t, d in zip(frames, times, detections)]


def inside(boxes: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Which boxes have their centre within [low, high]."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    return ((centre >= low) & (centre <= high)).all(axis=1) if len(boxes) else np.zeros(0, bool)


def score(truth: list, hypothesis: list, corners: np.ndarray, size: tuple[int, int]) -> tuple[float, int]:
    """IDF1 and ID switches of `hypothesis` (window pixels, shifted back by `corners`) against `truth` (full
    frame), both kept where a box's centre lies inside the window by MARGIN."""
    import motmetrics

    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    for (t_boxes, t_ids), (h_boxes, h_ids), corner in zip(truth, hypothesis, corners):
        h_boxes = h_boxes + np.tile(corner, 2)
        t_keep, h_keep = (inside(boxes, corner + MARGIN, corner + np.asarray(size) - MARGIN)
                          for boxes in (t_boxes, h_boxes))
        distances = 1.0 - box_iou(t_boxes[t_keep], h_boxes[h_keep])
        distances[distances > 0.5] = np.nan  # IoU below 0.5: no match (motmetrics' convention)
        accumulator.update(t_ids[t_keep].tolist(), h_ids[h_keep].tolist(), distances)
    summary = motmetrics.metrics.create().compute(accumulator, metrics=["idf1", "num_switches"])
    return 100 * float(summary["idf1"].iloc[0]), int(summary["num_switches"].iloc[0])


def first_picture(folder: Path) -> np.ndarray:
    """A MOTChallenge sequence's first frame (`img1/`, or the `mini/img1/` excerpt)."""
    import cv2

    for images in (folder / "img1", folder / "mini" / "img1"):
        pictures = sorted(images.glob("*.jpg")) + sorted(images.glob("*.png"))
        if pictures:
            return cv2.imread(str(pictures[0]))
    raise SystemExit(f"{folder} has no img1/ or mini/img1/ picture to move the window over")


def window_corners(frames: int, fps: float, room: tuple[int, int], paths: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The still window's corners (at the pan's middle) and `paths` moving windows' (one shake each)."""
    moving = [window_path(frames, fps, room, seed) for seed in range(paths)]
    return np.tile([int(np.median(moving[0][:, 0])), room[1] // 2], (frames, 1)), moving


def looks(frames: list[np.ndarray], full: list[Detections], corners: np.ndarray,
          size: tuple[int, int]) -> tuple[list[np.ndarray], list[Detections]]:
    """A window's frames and the full frame's detections moved into its pixels (clipped to it), so the only
    thing that differs between the still and a moving window is the motion, not what the detector saw."""
    return ([f[y:y + size[1], x:x + size[0]] for f, (x, y) in zip(frames, corners)],
            [in_window(d, corner, size) for d, corner in zip(full, corners)])


def compare(trackers: dict, frames: list[np.ndarray], times: list[float], full: list[Detections], truth,
            windows: dict[str, list[np.ndarray]], size: tuple[int, int]) -> dict:
    """Each tracker's (IDF1, ID switches) per window kind and window, and its ms a frame; `truth(name)` is
    what tracker `name` is scored against (full-frame boxes and ids per frame)."""
    seen = {kind: [looks(frames, full, corners, size) for corners in window_list]
            for kind, window_list in windows.items()}
    results = {}
    for name, make in trackers.items():
        reference = truth(name)
        start = time.perf_counter()
        results[name] = {kind: [score(reference, track(partial(make, corners), images, times, found), corners, size)
                                for (images, found), corners in zip(seen[kind], window_list)]
                         for kind, window_list in windows.items()}
        results[name]["ms"] = 1000 * (time.perf_counter() - start) / (len(frames) * sum(map(len, windows.values())))
    return results


TABLE = ("| tracker | IDF1 still | IDF1 moving | ID sw. still | ID sw. moving | ID sw. added | ms/frame |\n"
         "|---|---|---|---|---|---|---|")


def row(name: str, still: tuple[float, float], moved: np.ndarray, ms: float | None) -> str:
    idf1_m, sw_m = moved.mean(axis=0)
    return (f"| {name} | {still[0]:.2f} | {idf1_m:.2f} ({moved[:, 0].min():.1f}-{moved[:, 0].max():.1f}) | "
            f"{still[1]:g} | {sw_m:.1f} | {sw_m - still[1]:+.1f} | {'-' if ms is None else f'{ms:.2f}'} |")


OFF = "vidpipe ByteTrack, camera motion off"
EXACT = "vidpipe ByteTrack fed the window's exact motion (a reference)"


def trackers_at(rate: float) -> dict:
    """name -> make(corners): a fresh tracker for a window whose corners are `corners` (None: the full frame)."""
    return {OFF: lambda corners: Vidpipe("off", rate),
            "vidpipe ByteTrack, camera motion on": lambda corners: Vidpipe("on", rate),
            "vidpipe ByteTrack, camera motion auto (default)": lambda corners: Vidpipe("auto", rate),
            "ultralytics ByteTrack": lambda corners: Ultralytics("bytetrack", rate),
            "ultralytics BoT-SORT (its GMC, no ReID)": lambda corners: Ultralytics("botsort", rate),
            EXACT: lambda corners: Vidpipe("off", rate, corners)}


def labelled(folders: list[Path], paths: int, every: list[int]) -> None:
    """The same comparison, scored against people's labels rather than each tracker's own full-frame run.

    Each MOTChallenge sequence (a fixed camera) is seen through a window of 3/4 its size over its first frame
    (a real picture of the scene, for the motion estimate; the people in it stand still in it), with the
    sequence's det.txt boxes moved into the window, and scored against gt.txt moved likewise. A tracker's own
    run rewards it for repeating its own near-ties: vidpipe's full frame nudged by random 0.05 px warps
    disagrees with itself on 2 ID switches, while on MOT17's labels the same nudge costs 0.2 HOTA."""
    from counting import ground_truth

    from vidpipe.evaluation.motchallenge import MotSequence

    totals: dict[int, dict[str, list]] = {k: {} for k in every}
    for folder in folders:
        sequence = MotSequence.open(folder)
        picture = first_picture(folder)
        height, width = picture.shape[:2]
        size = (width * 3 // 4, height * 3 // 4)
        room = (width - size[0], height - size[1])
        n, fps = sequence.length, sequence.fps
        still, moving = window_corners(n, fps, room, paths)
        found = [d for _, d in sequence.detections()]
        truth = [(d.xyxy, d.track_id) for _, d in ground_truth(sequence)]
        times = [i / fps for i in range(n)]
        for k in every:
            picked = slice(None, None, k)
            results = compare(trackers_at(fps / k), [picture] * len(times[picked]), times[picked], found[picked],
                              lambda name, truth=truth[picked]: truth,
                              {"still": [still[picked]], "moving": [p[picked] for p in moving]}, size)
            for name, result in results.items():
                totals[k].setdefault(name, []).append(result)
        print(f"{sequence.name}: {n} frames at {fps:g} fps, window {size[0]}x{size[1]} over its first frame, pan "
              f"{moving[0][:, 0].min()}-{moving[0][:, 0].max()} px", flush=True)
    for k in every:
        print(f"\n**Against labels ({', '.join(f.name for f in folders)}), every {k} frame(s).** IDF1: mean over "
              f"the sequences; ID switches: their sum. Moving: mean of {paths} paths (range).\n\n" + TABLE)
        for name, per_sequence in totals[k].items():
            still = np.array([r["still"][0] for r in per_sequence])
            moved = np.array([r["moving"] for r in per_sequence])  # sequence, path, (idf1, switches)
            moved = np.stack([moved[:, :, 0].mean(axis=0), moved[:, :, 1].sum(axis=0)], axis=1)
            ms = float(np.mean([r["ms"] for r in per_sequence]))
            print(row(name, (still[:, 0].mean(), still[:, 1].sum()), moved, None if name == EXACT else ms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path, nargs="?", help="a fixed-camera clip (e.g. walkway-pedestrians.mp4)")
    parser.add_argument("--window", type=int, nargs=2, default=(480, 300), metavar=("W", "H"))
    parser.add_argument("--paths", type=int, default=4, help="moving windows (shakes) to average over")
    parser.add_argument("--every", type=int, nargs="+", default=(1, 6, 30), metavar="K",
                        help="also track every Kth frame only (a sampled corpus)")
    parser.add_argument("--model", default=None, help="detector model [default: the bundled yolov8n.pt]")
    parser.add_argument("--labelled", type=Path, nargs="+", default=[], metavar="SEQUENCE",
                        help="MOTChallenge sequence folders filmed by a fixed camera, to score against labels")
    args = parser.parse_args()
    if args.clip is None and not args.labelled:
        parser.error("give a clip, --labelled sequences, or both")
    print(describe())
    if args.clip is not None:
        label_free(args)
    if args.labelled:
        labelled(args.labelled, args.paths, args.every)


def label_free(args: argparse.Namespace) -> None:
    source = open_source(args.clip)
    frames = [f.image for f in source]
    fps, (height, width) = source.info.fps, frames[0].shape[:2]
    times = [i / fps for i in range(len(frames))]
    size = tuple(args.window)
    room = (width - size[0], height - size[1])
    if min(room) < 16:
        raise SystemExit(f"the window {size} leaves too little room to move in a {width}x{height} clip")
    still, paths = window_corners(len(frames), fps, room, args.paths)
    moving = paths[0]
    print(f"{args.clip.name}: {len(frames)} frames, {width}x{height} at {fps:g} fps; window {size[0]}x{size[1]}, "
          f"pan {moving[:, 0].min()}-{moving[:, 0].max()} px, shake up to "
          f"{np.abs(np.diff(moving, axis=0)).max()} px a frame")

    detector = load_detector("yolo", model=args.model, conf=0.1, classes=["person"])
    full = [detector.detect([image])[0] for image in frames]
    for every in args.every:
        rate, picked = fps / every, slice(None, None, every)
        makers = trackers_at(rate)
        own: dict[str, list] = {}

        def own_run(name: str, makers=makers, picked=picked, own=own) -> list:
            """A tracker's own full-frame run, its truth (for the exact-motion reference, vidpipe's without camera
            motion, which is what that tracker does on a full frame that does not move)."""
            key = OFF if name == EXACT else name
            if key not in own:
                own[key] = track(partial(makers[key], None), frames[picked], times[picked], full[picked])
            return own[key]

        results = compare(makers, frames[picked], times[picked], full[picked], own_run,
                          {"still": [still[picked]], "moving": [p[picked] for p in paths]}, size)
        print(f"\n**Every {every} frame(s): {rate:g} fps.** Moving: mean of {args.paths} paths (range).\n\n{TABLE}")
        for name, result in results.items():
            print(row(name, result["still"][0], np.array(result["moving"]), None if name == EXACT else result["ms"]))
    print("\nms/frame: the tracker's time per frame, camera-motion estimate included (detection excluded).")

    # The estimate itself, against the first moving window's known path (no labels needed either).
    images, found = looks(frames, full, paths[0], size)
    print("\n| motion estimate, moving window | mean error px | p95 px | frames off by > 1 px |\n|---|---|---|---|")
    for name, make in (("vidpipe, objects' boxes left out (shipped)", lambda: vidpipe_estimate(True)),
                       ("vidpipe, every corner", lambda: vidpipe_estimate(False)),
                       ("ultralytics GMC (BoT-SORT's sparse optical flow)", ultralytics_estimate)):
        errors = estimate_errors(make(), images, times, found, paths[0])
        print(f"| {name} | {errors.mean():.2f} | {np.percentile(errors, 95):.2f} | {(errors > 1).sum()} |")


if __name__ == "__main__":
    main()

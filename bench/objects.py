"""One object, one track, end to end: distinct objects per clip, with the detector vidpipe ships.

For each sample clip whose objects were counted by watching it (WATCHED below, with how), runs `vidpipe run`
(tables only, the clip's classes) at int8, at fp32, at bf16 (where the CPU has it) and at int8 with
`--detect-every 2`, and ultralytics' BoT-SORT and ByteTrack (`model.track(persist=True)`) with the same weights
on the same classes, and prints per clip and setting, for vidpipe twice from the same run: its tracks as the
tracker made them (`--link online`, the default: `track_id`) and as the offline linking joined them (`--link
offline`: `linked_id`):
- tracks, and objects: vidpipe's confirmed tracks (`tracking.confirm`); every id for the peers, which have
  no such notion;
- the distinct-object error against the watched count (target: at most 15%);
- watched objects found: each watched object (its class, and when it was in view) paired one to one with
  the object track that overlaps its time in view most (at least 30% of it); a count below the truth must
  not come from objects missed;
- fragments: object tracks under 1 s, and object tracks born or ended away from the picture's border (2% of
  its size) and more than 0.5 s from the clip's ends (a track that starts or stops in the middle of the
  picture is an object's second piece, or no object);
- the detector's reach: a run where every box of the clip's classes scoring 0.1 or more starts a track and
  every track is an object. Its "watched found" is the most any gates could find from the shipped detector's
  boxes: a watched object it misses is the detector's miss, not the tracker's.

    python bench/objects.py ../shared/sample_videos [--weights ../shared/models/yolov8n.pt] [--clips room parking]
        [--settings int8] [--no-peers]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from machine import describe

import vidpipe
from vidpipe.detectors.runtimes import openvino_cpu

PEOPLE = ("person",)
VEHICLES = ("car", "truck", "bus", "motorcycle")
BORDER = 0.02  # of the picture's size: a box this close to the border touches it
END_S = 0.5  # a track this close to the clip's start or end was cut by it
MIN_OVERLAP = 0.3  # a watched object is found by a track in view for at least this share of its time
REACH = "int8, every box (the detector's reach)"


@dataclass(frozen=True)
class Watched:
    """One clip's objects as a person counted them: their classes and (start, end) seconds in view."""

    clip: str
    classes: tuple[str, ...]
    objects: tuple[tuple[float, float], ...]
    how: str


# Counted by eye, without any detector or tracker, from frames decoded with OpenCV and tiled into contact
# sheets with the time and frame number on each tile (room and parking at 2 fps, walkway at 4 fps), then
# full-rate bursts around every entry and exit; times good to 0.2 s (room, parking) and 0.3 s (walkway).
# 2026-12-06, by a colleague, for issue 36.
WATCHED = {
    "room-people-one-by-one": Watched(
        "room-people-one-by-one", PEOPLE,
        ((6.0, 19.8), (22.6, 44.9), (50.2, 69.9), (74.5, 86.9), (92.2, 120.0), (123.4, 136.0)),
        "6 people, one at a time: in at the bottom edge, a stay at the table, out at the right edge"),
    "parking-lot-cars": Watched(
        "parking-lot-cars", VEHICLES, ((4.40, 8.56), (14.48, 18.24), (14.96, 18.96), (25.20, 27.76)),
        "4 cars driving through (two pass each other at 16-17.5 s); a dark 8 px sliver at the top edge, "
        "perhaps a parked car outside the picture, not counted (range 4-5)"),
    "walkway-pedestrians": Watched(
        "walkway-pedestrians", PEOPLE,
        ((0.0, 6.3), (0.0, 6.7), (0.1, 12.8), (1.1, 13.0), (7.6, 15.2), (7.8, 15.4), (9.3, 16.0), (10.0, 16.5),
         (10.6, 17.2), (11.6, 18.5), (11.8, 18.1), (15.7, 23.1), (15.8, 23.1), (17.2, 23.1), (20.4, 22.2)),
        "15 people on the walkway (range 14-16: pairs overlap for seconds); 2-4 more show only as legs in a "
        "hallway at the top edge and are not counted"),
    # Counted the same way by a second colleague: every frame decoded,
    # contact sheets at 2 fps, zoomed crops of the far intersection at 4 fps (all its 151 frames).
    "suburban-traffic": Watched(
        "suburban-traffic", VEHICLES,
        ((0.0, 1.6), (0.0, 4.1), (0.0, 6.2), (0.0, 8.6), (0.0, 11.6), (5.5, 18.6), (10.2, 20.8), (24.5, 30.6),
         (0.0, 25.4), (0.0, 25.8), (0.0, 28.7), (2.5, 7.3), (7.5, 10.5), (10.5, 12.2), (13.0, 15.0), (17.0, 17.5),
         (0.0, 37.65), (24.4, 37.0)),
        "18 vehicles (range 16-23): 8 toward the camera, 3 queued at a red light for 20 s then away, 5 small on "
        "the far cross street (15-40 px, partly behind foliage), 1 parked in a driveway, 1 stopping at the "
        "far-left edge"),
    "street-montage": Watched(
        "street-montage", VEHICLES,
        ((0.0, 1.16), (0.4, 1.16), (1.2, 3.0), (1.2, 1.8), (1.8, 3.0), *[(1.2, 3.0)] * 5, (3.04, 5.44),
         (3.04, 5.44), (3.12, 4.08), (3.76, 4.3), (5.48, 7.44), (5.48, 6.5), (5.48, 7.44), (6.2, 7.44),
         (7.32, 7.44), (5.48, 7.44), (5.48, 7.44)),
        "21 vehicles in 6 scenes cut together (range 18-26): a bus seen from above, a jam out of focus (about "
        "5 cars, range 4-8), a passing van, cars through a fence"),
}
# bf16 is what `--precision auto` keeps on a CPU where int8 is not 1.15x faster (an AMX Xeon may be one); it
# needs a CPU with bf16 arithmetic, and is left out elsewhere.
SETTINGS = {"int8": {"precision": "int8"}, "fp32": {"precision": "fp32"}, "bf16": {"precision": "bf16"},
            "int8, detect every 2": {"precision": "int8", "detect_every": 2},
            # Not a setting for use: every box of the clip's classes down to 0.1 starts a track and each track
            # is an object, so its "watched found" is what the detector's boxes can give any tracker.
            REACH: {"precision": "int8", "confirm_frames": 1, "confirm_score": 0.0,
                    "trackers": {"bytetrack": {"track_high_thresh": 0.1, "new_track_thresh": 0.1}}}}
PEERS = {"BoT-SORT": "botsort.yaml", "ByteTrack (ultralytics)": "bytetrack.yaml"}


def fragments(boxes: pd.DataFrame, width: int, height: int, end_s: float) -> dict[int, tuple[float, bool]]:
    """Per track (rows: track_id, time_s, x1, y1, x2, y2): its length in seconds, and whether it was born or
    ended away from the picture's border and the clip's ends."""
    out = {}
    mx, my = BORDER * width, BORDER * height
    for track, rows in boxes.sort_values("time_s").groupby("track_id"):
        first, last = rows.iloc[0], rows.iloc[-1]

        def inside(r) -> bool:
            return r.x1 > mx and r.y1 > my and r.x2 < width - mx and r.y2 < height - my

        born_inside = inside(first) and first.time_s > END_S
        ended_inside = inside(last) and last.time_s < end_s - END_S
        out[int(track)] = (float(last.time_s - first.time_s), born_inside or ended_inside)
    return out


def found(watched: Watched, spans: dict[int, tuple[float, float]]) -> int:
    """Watched objects paired one to one with the track whose time in view overlaps theirs most."""
    free, hits = dict(spans), 0
    for start, end in sorted(watched.objects):
        overlap = {t: min(end, b) - max(start, a) for t, (a, b) in free.items()}
        best = max(overlap, key=overlap.get, default=None)
        if best is not None and overlap[best] >= MIN_OVERLAP * (end - start):
            hits += 1
            del free[best]
    return hits


def row(clip: str, setting: str, tracks: int, objects: pd.DataFrame, boxes: pd.DataFrame, info) -> str:
    """One line of the table: `objects` (track_id) are the tracks counted as objects, `boxes` their boxes."""
    watched = WATCHED.get(clip)
    frag = fragments(boxes[boxes["track_id"].isin(objects["track_id"])], info.width, info.height, info.duration)
    spans = {int(t): (g["time_s"].min(), g["time_s"].max()) for t, g in boxes.groupby("track_id")
             if t in set(objects["track_id"])}
    n = len(objects)
    if watched:
        truth = len(watched.objects)
        error = f"{100 * (n - truth) / truth:+.0f}%"
        hit = f"{found(watched, spans)}/{truth}"
    else:
        truth, error, hit = "-", "-", "-"
    short = sum(length < 1.0 for length, _ in frag.values())
    away = sum(mid for _, mid in frag.values())
    return f"| {clip} | {setting} | {truth} | {tracks} | {n} | {error} | {hit} | {short} | {away} |"


def run_vidpipe(clip: Path, classes: tuple[str, ...], settings: dict, out: Path) -> dict[str, tuple]:
    """vidpipe's tracks, its objects and their detected boxes, by linking: online, the tracker's tracks (objects:
    the confirmed ones); offline, its tracks joined by `linked_id` (objects: those with a confirmed track)."""
    result = vidpipe.run(clip, out, classes=list(classes), video=False, report=False, mot=False, link="offline",
                         **settings)
    tracks = pd.read_parquet(result.outputs["tracks"])
    boxes = pd.read_parquet(result.outputs["detections"]).rename(columns=str)
    boxes = boxes[boxes["detected"]]
    linked = tracks.assign(track_id=tracks["linked_id"])
    objects = linked[linked["confirmed"]].drop_duplicates("track_id")
    return {"online": (len(tracks), tracks[tracks["confirmed"]], boxes),
            "offline": (linked["track_id"].nunique(), objects, boxes.assign(track_id=boxes["linked_id"]))}


def run_peer(clip: Path, classes: tuple[str, ...], weights: Path, tracker: str, fps: float):
    """Every id ultralytics' tracker gives on the clip, and the boxes behind them."""
    from ultralytics import YOLO

    model = YOLO(str(weights))
    ids = [i for i, name in model.names.items() if name in classes]
    rows = []
    for index, result in enumerate(model.track(str(clip), persist=True, tracker=tracker, classes=ids, stream=True,
                                               verbose=False)):
        if result.boxes.id is None:
            continue
        for track, box in zip(result.boxes.id.int().tolist(), result.boxes.xyxy.tolist()):
            rows.append((track, index / fps, *box))
    boxes = pd.DataFrame(rows, columns=["track_id", "time_s", "x1", "y1", "x2", "y2"])
    objects = pd.DataFrame({"track_id": boxes["track_id"].unique()})
    return len(objects), objects, boxes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the sample clips (../shared/sample_videos)")
    parser.add_argument("--weights", type=Path, default=Path("../shared/models/yolov8n.pt"))
    parser.add_argument("--clips", nargs="*", help="name parts of the clips to run (default: every watched clip)")
    parser.add_argument("--settings", nargs="*", help="name parts of vidpipe's settings to run (default: all)")
    parser.add_argument("--no-peers", action="store_true", help="leave ultralytics' trackers out")
    args = parser.parse_args()
    print(describe())
    for watched in WATCHED.values():
        print(f"- {watched.clip}: {len(watched.objects)} {'/'.join(watched.classes)}; {watched.how}")
    print("\n| clip | tracker | watched | tracks | objects | error | watched found | objects < 1 s | "
          "objects born or ended mid-picture |\n|---|---|---|---|---|---|---|---|---|")
    clips = [c for c in WATCHED if not args.clips or any(part in c for part in args.clips)]
    bf16 = "BF16" in openvino_cpu()[1]
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            path, classes = args.folder / f"{clip}.mp4", WATCHED[clip].classes
            source = vidpipe.open_source(path)
            info = source.info
            source.close()
            for name, settings in SETTINGS.items():
                if args.settings and not any(part in name for part in args.settings) or name == "bf16" and not bf16:
                    continue
                runs = run_vidpipe(path, classes, settings, Path(tmp) / f"{clip}-{len(name)}")
                for link, (tracks, objects, boxes) in runs.items():
                    print(row(clip, f"vidpipe, {name}, linked {link}", tracks, objects, boxes, info), flush=True)
            for name, config in {} if args.no_peers else PEERS.items():
                tracks, objects, boxes = run_peer(path, classes, args.weights, config, info.fps)
                print(row(clip, name, tracks, objects, boxes, info), flush=True)


if __name__ == "__main__":
    main()

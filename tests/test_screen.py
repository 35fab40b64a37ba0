"""Masks and per-class filters (`vidpipe.screen`): real runs of the suburban clip with the bundled YOLO, each
held against a control run without them. `--tracker none` runs compare detection for detection (no tracker
between); tracked runs show a masked car never becomes an object, a line crossing or a count."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import SUBURBAN, run_cli

WIDTH, HEIGHT = 640, 352  # the suburban clip's frames
LEFT = "0,0,0.5,0,0.5,1,0,1"  # the left half of the picture
ROAD = "0,0.25,1,0.25,1,1,0,1"  # everything below the horizon: where the cars drive
LINE = "road=0,0.55,1,0.55"


def detections(tmp_path, name: str, *options: str) -> tuple[pd.DataFrame, dict]:
    """The detections table and the summary of an untracked run of the clip's first 20 frames."""
    out = tmp_path / name
    result = run_cli("run", str(SUBURBAN), "--max-frames", "20", "--tracker", "none", "--no-video", "--no-report",
                     "--no-mot", "-q", "-o", str(out), *options)
    assert result.returncode == 0, result.stderr
    return pd.read_parquet(out / "detections.parquet"), json.loads((out / "summary.json").read_text())


def rows(table: pd.DataFrame) -> list[tuple]:
    return sorted(zip(table["frame"], table["class_name"], table["x1"].round(1), table["y1"].round(1)))


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    return detections(tmp_path_factory.mktemp("control"), "out")[0]


def test_a_mask_drops_exactly_the_detections_standing_inside_it(tmp_path, control):
    masked, summary = detections(tmp_path, "masked", "--mask", LEFT)
    inside = (control["x1"] + control["x2"]) / 2 <= WIDTH / 2  # the bottom centre, on the border included
    assert inside.sum() >= 10 and (~inside).sum() >= 10  # cars on both sides: the test can tell
    assert rows(masked) == rows(control[~inside])
    assert summary["filtered"]["dropped"] == {"mask 1": int(inside.sum())}
    assert summary["filtered"]["masks"] == [{"name": "mask 1", "points": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}]


def test_class_filters_drop_exactly_the_rows_under_their_limits(tmp_path, control):
    filtered, summary = detections(tmp_path, "filtered", "--filter", "car:min_score=0.5,min_area=0.01")
    car = control["class_name"] == "car"
    low = car & (control["score"] < 0.5)
    small = car & ~low & ((control["x2"] - control["x1"]) * (control["y2"] - control["y1"]) < 0.01 * WIDTH * HEIGHT)
    assert low.sum() and small.sum() and (car & ~low & ~small).sum()  # each limit drops some, some cars stay
    assert rows(filtered) == rows(control[~low & ~small])
    assert summary["filtered"]["dropped"] == {"car min_score": int(low.sum()), "car min_area": int(small.sum())}
    assert summary["filtered"]["filters"] == {"car": {"min_score": 0.5, "min_area": 0.01}}


@pytest.mark.parametrize("mask", [[], ["--mask", ROAD]], ids=["control", "masked"])
def test_a_masked_car_never_becomes_an_object_a_crossing_or_a_count(tmp_path, mask):
    """Tracked, with a counting line: the control finds cars, tracks them and counts crossings; with the road
    masked there are no car detections, no tracks and no crossings at all."""
    out = tmp_path / "out"
    result = run_cli("run", str(SUBURBAN), "--max-frames", "120", "--line", LINE, "--no-video", "--no-report",
                     "--no-mot", "--classes", "car", "-q", "-o", str(out), *mask)
    assert result.returncode == 0, result.stderr
    found = pd.read_parquet(out / "detections.parquet")
    summary = json.loads((out / "summary.json").read_text())
    crossings = sum(sum(side.values()) for side in summary["lines"]["road"].values())
    if mask:
        assert len(found) == 0 and summary["tracks"] == 0 and crossings == 0
        assert summary["filtered"]["dropped"]["mask 1"] > 100
    else:
        assert len(found) > 100 and summary["tracks"] >= 3 and crossings >= 1
        assert "filtered" not in summary


def test_each_camera_of_many_has_its_own_mask(tmp_path):
    preset = tmp_path / "cameras.yaml"
    preset.write_text(f"cameras:\n  - {{name: masked, source: {SUBURBAN}, masks: ['{ROAD}']}}\n"
                      f"  - {{name: open, source: {SUBURBAN}}}\n")
    out = tmp_path / "out"
    result = run_cli("live", "-p", str(preset), "--max-frames", "10", "--no-report", "-q", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert len(pd.read_parquet(out / "masked" / "detections.parquet")) == 0
    assert len(pd.read_parquet(out / "open" / "detections.parquet")) >= 10  # cars in every frame


def test_the_annotated_frames_show_the_mask_hatched_inside_it_only(tmp_path):
    from vidpipe.analytics import Region
    from vidpipe.screen import Screen

    ok, frame = cv2.VideoCapture(str(SUBURBAN)).read()
    assert ok
    drawn = frame.copy()
    Screen([Region.parse(f"m={LEFT}", "mask")], {}, ["car"]).draw(drawn)
    changed = (drawn != frame).any(axis=2)
    columns = np.nonzero(changed.any(axis=0))[0]
    assert changed[:, : WIDTH // 2].mean() > 0.02  # the hatch covers the mask
    assert columns.max() <= WIDTH // 2 + 2  # and nothing past its border (its outline's width)


def test_the_annotated_video_shows_the_mask(tmp_path):
    """Two runs with no box drawn (conf 0.99), with and without the mask: their videos' first frames differ
    in the masked half only."""
    frames = []
    for name, mask in (("control", []), ("masked", ["--mask", LEFT])):
        out = tmp_path / name
        result = run_cli("run", str(SUBURBAN), "--max-frames", "3", "--tracker", "none", "--conf", "0.99",
                         "--no-report", "--no-mot", "-q", "-o", str(out), *mask)
        assert result.returncode == 0, result.stderr
        ok, frame = cv2.VideoCapture(str(next(out.glob("*.mp4")))).read()
        frames.append(frame.astype(np.int16))
    difference = np.abs(frames[1] - frames[0]).mean(axis=2)
    assert difference[:, : WIDTH // 2 - 4].mean() > 5 > 1 > difference[:, WIDTH // 2 + 4:].mean()


@pytest.mark.parametrize("options, message", [
    (["--mask", "0,0,1,1"], "needs 3 or more points"),
    (["--mask", "0,0,1,1,1,0,0,1"], "its border crosses itself"),
    (["--filter", "car:min_area=-5"], "min_area must be a number >= 0"),
    (["--filter", "car:min_area=5000,max_area=100"], "is above max_area"),
    (["--filter", "car:min_size=5"], "give any of min_score, min_area, max_area"),
    (["--filter", "unicorn:min_score=0.5"], "unknown class 'unicorn'"),
])
def test_bad_masks_and_filters_are_one_line(tmp_path, options, message):
    result = run_cli("run", str(SUBURBAN), "-o", str(tmp_path / "out"), *options)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr

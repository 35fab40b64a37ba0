"""Lines and zones on synthetic tracks with known geometry: exact counts and dwell times."""

from __future__ import annotations

import numpy as np
import pytest

from vidpipe.analytics import LineCounter, Region, Zone, segments_intersect
from vidpipe.detections import Detections
from vidpipe.errors import InputError
from vidpipe.frames import Frame

NAMES = ("person", "car")
IMAGE = np.zeros((1, 1, 3), np.uint8)


def observe(counter, path, track=1, cls=1, fps=10.0, start=0):
    """Feed one track whose box bottom-centre follows `path` (None: not seen that frame); all events."""
    events = []
    for i, point in enumerate(path):
        frame = Frame(start + i, (start + i) / fps, IMAGE)
        if point is None:
            detections = Detections.empty(NAMES)
        else:
            x, y = point
            detections = Detections([[x - 5, y - 20, x + 5, y]], [0.9], [cls], NAMES, [track])
        events += counter.update(frame, detections)
    return events


def horizontal_line() -> LineCounter:
    return LineCounter("gate", (0, 100), (200, 100))  # drawn left to right: `in` is moving down


def test_crossing_both_ways_counts_each_direction_once():
    line = horizontal_line()
    down = observe(line, [(50, 90), (50, 95), (50, 105), (50, 110)], track=1)
    up = observe(line, [(60, 120), (60, 99)], track=2)
    assert [(e.direction, e.track_id, e.frame) for e in down + up] == [("in", 1, 2), ("out", 2, 1)]
    assert line.figures() == {"in": {"car": 1}, "out": {"car": 1}}


def test_touching_the_line_without_crossing_is_no_crossing():
    line = horizontal_line()
    observe(line, [(50, 90), (50, 100), (50, 100), (50, 92), (50, 80)])
    assert line.figures() == {"in": {}, "out": {}}


def test_the_segment_counts_not_the_infinite_line():
    line = horizontal_line()
    observe(line, [(250, 90), (250, 110)], track=1)  # beside the segment: no count
    observe(line, [(200, 90), (200, 110)], track=2)  # through its end point: counts
    assert line.figures() == {"in": {"car": 1}, "out": {}}


def test_a_crossing_between_observations_several_frames_apart_is_found():
    line = horizontal_line()
    events = observe(line, [(20, 60), None, None, None, (180, 160)])  # never seen near the line
    assert [(e.direction, e.frame) for e in events] == [("in", 4)]


def test_a_track_lost_and_found_again_does_not_count_twice():
    line = horizontal_line()
    observe(line, [(50, 90), (50, 110), None, None, (50, 95), (50, 112), (50, 130)])
    assert line.figures() == {"in": {"car": 1}, "out": {"car": 1}}  # down, back up, down again: once each way


def test_a_line_counts_only_its_classes():
    line = LineCounter("gate", (0, 100), (200, 100), classes=["person"])
    observe(line, [(50, 90), (50, 110)], cls=1)
    observe(line, [(70, 90), (70, 110)], track=2, cls=0)
    assert line.figures() == {"in": {"person": 1}, "out": {}}


def square_zone(**options) -> Zone:
    return Zone("queue", [(100, 100), (200, 100), (200, 200), (100, 200)], **options)


def test_zone_visits_dwell_and_occupancy():
    """Enters at 0.2 s, leaves at 1.5 s (10 fps): one visit of 1.3 s, one occupant at its peak."""
    zone = square_zone(hysteresis_s=0.3)
    path = [(50, 150)] * 2 + [(150, 150)] * 13 + [(250, 150)] * 6
    events = observe(zone, path)
    assert [(e.kind, e.frame, round(e.time_s, 2)) for e in events] == [("enter", 2, 0.2), ("exit", 15, 1.5)]
    assert zone.figures() == {"visits": 1, "mean_dwell_s": 1.3, "max_dwell_s": 1.3, "peak_occupancy": 1}


def test_flicker_on_the_border_makes_no_extra_visits():
    zone = square_zone(hysteresis_s=0.3)
    inside, outside = (150, 150), (95, 150)
    path = [outside] * 3 + [inside] * 10 + [outside, inside, outside, inside] + [inside] * 10 + [outside] * 6
    events = observe(zone, path)
    assert [e.kind for e in events] == ["enter", "exit"] and zone.figures()["visits"] == 1
    assert zone.visits == [pytest.approx((len(path) - 6 - 3) / 10)]


def test_a_visit_open_at_the_end_closes_at_the_last_observation():
    zone = square_zone(hysteresis_s=0.2)
    observe(zone, [(50, 150)] + [(150, 150)] * 9)
    assert [e.kind for e in zone.close()] == ["exit"] and zone.visits == [pytest.approx(0.8)]


def test_fractions_mean_the_frame_and_bad_regions_are_named():
    line = Region.parse("middle=0,0.5,1,0.5", "line")
    np.testing.assert_allclose(line.in_pixels(640, 360), [[0, 180], [640, 180]])
    assert Region.parse("door=10,20,300,20", "line").in_pixels(640, 360).tolist() == [[10, 20], [300, 20]]
    with pytest.raises(InputError, match="--line takes NAME=x1,y1,x2,y2"):
        Region.parse("middle=0,0.5,1", "line")
    with pytest.raises(InputError, match="needs 3 or more points"):
        Region.of({"name": "z", "points": [[0, 0], [1, 1]]}, "zone")


def test_segment_intersection():
    a, b = np.array([0.0, 0.0]), np.array([10.0, 10.0])
    assert segments_intersect(a, b, np.array([0.0, 10.0]), np.array([10.0, 0.0]))
    assert not segments_intersect(a, b, np.array([20.0, 0.0]), np.array([30.0, 10.0]))
    assert segments_intersect(a, b, np.array([10.0, 10.0]), np.array([20.0, 0.0]))  # touching at an end


def test_cars_crossing_a_real_road_match_a_count_by_eye(tmp_path):
    """suburban-traffic.mp4 with a line across the road at 55% of the height. Counted by watching the clip
    (two frames a second, the line drawn on them): 8 vehicles cross it coming toward the camera (white car
    at 1 s, red car 3 s, grey car 5 s, white pickup 7 s, white SUV 10 s, black SUV 17.5 s, black sedan 19.5 s,
    grey SUV 29.5 s) and none the other way. vidpipe must be within 1 of each."""
    import json

    import pandas as pd

    from conftest import SUBURBAN, run_cli

    result = run_cli("run", str(SUBURBAN), "-o", str(tmp_path), "--line", "road=0,0.55,1,0.55", "--zone",
                     "near=0.3,0.5,0.9,0.5,0.9,1,0.3,1", "--heatmap", "--no-video", "-q")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    counted = {d: sum(summary["lines"]["road"][d].values()) for d in ("in", "out")}
    assert abs(counted["in"] - 8) <= 1 and counted["out"] <= 1, summary["lines"]
    events = pd.read_parquet(tmp_path / "events.parquet")
    assert list(events.columns) == ["video", "frame", "time_s", "track_id", "class_name", "kind", "name",
                                    "direction"]
    assert (events["kind"] == "cross").sum() == counted["in"] + counted["out"]
    zone = summary["zones"]["near"]
    visits = events[(events["name"] == "near")]
    assert zone["visits"] == (visits["kind"] == "exit").sum() == (visits["kind"] == "enter").sum() > 0
    frames = pd.read_parquet(tmp_path / "frames.parquet")
    assert frames["near_n"].max() == zone["peak_occupancy"]
    assert (tmp_path / "heatmap.png").stat().st_size > 10_000
    report = (tmp_path / "report.html").read_text()
    assert all(f'id="{s}"' in report for s in ("line-counts", "dwell", "heatmap"))

"""Lines and zones on synthetic tracks with known geometry: exact counts and dwell times."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidpipe.analytics import Analytics, LineCounter, Region, Zone, segments_intersect
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


def horizontal_line(**options) -> LineCounter:
    return LineCounter("gate", (0, 100), (200, 100), **options)  # drawn left to right: `in` is moving down


def test_crossing_both_ways_counts_each_direction_once():
    line = horizontal_line()
    down = observe(line, [(50, 90), (50, 95), (50, 105)] + [(50, 110)] * 5, track=1)  # 0.5 s past it (10 fps)
    up = observe(line, [(60, 120)] + [(60, 99)] * 6, track=2)
    assert [(e.direction, e.track_id, e.frame) for e in down + up] == [("in", 1, 2), ("out", 2, 1)]
    assert line.figures() == {"in": {"car": 1}, "out": {"car": 1}}


def test_a_track_hovering_on_the_line_then_leaving_counts_once():
    """The bottom edge within 3 px of the line for 20 frames (2 s), on both sides of it, then away downward:
    exactly one `in`, dated at the first observation of the final, confirmed side."""
    line = horizontal_line()
    hover = [(50, 100 + d) for d in [-3, 2, -1, 3, -2, 1, 2, -3, 1, -1, 3, 2, -2, 1, -3, 2, -1, 3, 1, -2]]
    events = observe(line, [(50, 80)] + hover + [(50, 103)] + [(50, 104 + 2 * i) for i in range(8)])
    assert [(e.direction, e.frame) for e in events] == [("in", 21)]
    assert line.figures() == {"in": {"car": 1}, "out": {}}


def test_at_once_counts_every_side_change_as_before():
    line = horizontal_line(hysteresis_s=0)
    events = observe(line, [(50, 98), (50, 102), (50, 99), (50, 103)])
    assert [(e.direction, e.frame) for e in events] == [("in", 1), ("out", 2)]  # once per direction still


def test_a_crossing_is_confirmed_by_distance_past_the_line_or_by_the_track_leaving():
    line = horizontal_line()
    fast = observe(line, [(50, 80), (50, 112)], track=1)  # 12 px past the line, the box is 20 px high
    assert [(e.direction, e.frame) for e in fast] == [("in", 1)]
    gone = observe(line, [(80, 97), (80, 103), None, None, None, None, None], track=2)  # lost 0.5 s after it
    assert [(e.direction, e.frame, e.track_id) for e in gone] == [("in", 1, 2)]
    ending = observe(line, [(110, 97), (110, 103)], track=3, start=7)
    assert ending == [] and [(e.track_id, e.frame) for e in line.close()] == [(3, 8)]  # the input ended


def test_touching_the_line_without_crossing_is_no_crossing():
    line = horizontal_line()
    observe(line, [(50, 90), (50, 100), (50, 100), (50, 92), (50, 80)])
    line.close()
    assert line.figures() == {"in": {}, "out": {}}


def test_the_segment_counts_not_the_infinite_line():
    line = horizontal_line()
    observe(line, [(250, 90), (250, 130)], track=1)  # beside the segment: no count
    observe(line, [(200, 90), (200, 130)], track=2)  # through its end point: counts
    assert line.figures() == {"in": {"car": 1}, "out": {}}


def test_a_crossing_between_observations_several_frames_apart_is_found():
    line = horizontal_line()
    events = observe(line, [(20, 60), None, None, None, (180, 160)])  # never seen near the line
    assert [(e.direction, e.frame) for e in events] == [("in", 4)]


def test_a_track_lost_and_found_again_does_not_count_twice():
    line = horizontal_line()
    observe(line, [(50, 90), (50, 130), None, None, (50, 75), (50, 132), (50, 140)])
    assert line.figures() == {"in": {"car": 1}, "out": {"car": 1}}  # down, back up, down again: once each way


def test_a_line_counts_only_its_classes():
    line = LineCounter("gate", (0, 100), (200, 100), classes=["person"])
    observe(line, [(50, 90), (50, 130)], cls=1)
    observe(line, [(70, 90), (70, 130)], track=2, cls=0)
    assert line.figures() == {"in": {"person": 1}, "out": {}}


def square_zone(**options) -> Zone:
    return Zone("queue", [(100, 100), (200, 100), (200, 200), (100, 200)], **options)


def test_zone_visits_dwell_and_occupancy():
    """Enters at 0.2 s, leaves at 1.5 s (10 fps): one visit of 1.3 s, one occupant at its peak."""
    zone = square_zone(hysteresis_s=0.3)
    path = [(50, 150)] * 2 + [(150, 150)] * 13 + [(250, 150)] * 6
    events = observe(zone, path)
    assert [(e.kind, e.frame, round(e.time_s, 2)) for e in events] == [("enter", 2, 0.2), ("exit", 15, 1.5)]
    assert zone.figures() == {"visits": 1, "complete_visits": 1, "cut_visits": 0, "mean_dwell_s": 1.3,
                              "median_dwell_s": 1.3, "max_dwell_s": 1.3, "peak_occupancy": 1}
    (visit,) = zone.visits
    assert (visit.enter_frame, visit.exit_frame, visit.dwell_s, visit.complete) == (2, 15, pytest.approx(1.3), True)


def test_flicker_on_the_border_makes_no_extra_visits():
    zone = square_zone(hysteresis_s=0.3)
    inside, outside = (150, 150), (95, 150)
    path = [outside] * 3 + [inside] * 10 + [outside, inside, outside, inside] + [inside] * 10 + [outside] * 6
    events = observe(zone, path)
    assert [e.kind for e in events] == ["enter", "exit"] and zone.figures()["visits"] == 1
    assert [v.dwell_s for v in zone.visits] == [pytest.approx((len(path) - 6 - 3) / 10)]


def test_a_visit_open_at_the_end_closes_at_the_last_observation_and_is_marked_cut():
    zone = square_zone(hysteresis_s=0.2)
    observe(zone, [(50, 150)] + [(150, 150)] * 9)
    assert [e.kind for e in zone.close()] == ["exit"]
    (visit,) = zone.visits
    assert (visit.dwell_s, visit.cut_at_start, visit.cut_at_end) == (pytest.approx(0.8), False, True)
    assert zone.figures() | {"peak_occupancy": None} == {
        "visits": 1, "complete_visits": 0, "cut_visits": 1, "mean_dwell_s": None, "median_dwell_s": None,
        "max_dwell_s": None, "peak_occupancy": None}  # a cut visit's length is not a dwell time


def test_a_track_the_tracker_dropped_inside_exits_then_as_it_would_at_the_end_and_is_forgotten():
    """Dropped (`Zone.drop`), a track last seen inside gets the exit and the visit the input's end would give
    it, at once; the zone forgets it, so the end adds nothing, and a track dropped outside exits nowhere."""
    path = [(50, 150)] + [(150, 150)] * 9 + [None] * 30
    dropped, ended = square_zone(hysteresis_s=0.2), square_zone(hysteresis_s=0.2)
    observe(dropped, path)
    observe(ended, path)
    exits = dropped.drop(1)
    assert [(e.kind, e.frame) for e in exits] == [(e.kind, e.frame) for e in ended.close()] == [("exit", 9)]
    assert dropped.visits == ended.visits and dropped.inside == set() and dropped.close() == []
    outside = square_zone(hysteresis_s=0.2)
    observe(outside, [(50, 150)] * 5, track=2)
    assert outside.drop(2) == [] and outside.drop(3) == []


def test_a_visit_already_inside_at_frame_0_is_cut_at_start_and_left_out_of_the_dwell():
    """Track 1 is inside from frame 0 and leaves at 1.0 s; track 2 walks in at 0.5 s and out at 2.0 s: only
    track 2's 1.5 s is a dwell time."""
    zone = square_zone(hysteresis_s=0.2)
    observe(zone, [(150, 150)] * 10 + [(250, 150)] * 5, track=1)
    observe(zone, [(50, 150)] * 5 + [(150, 150)] * 15 + [(250, 150)] * 5, track=2)
    zone.close()
    visits = {v.track_id: v for v in zone.visits}
    assert (visits[1].enter_frame, visits[1].cut_at_start, visits[1].cut_at_end) == (0, True, False)
    assert visits[2].complete and visits[2].dwell_s == pytest.approx(1.5)
    figures = zone.figures()
    assert (figures["visits"], figures["complete_visits"], figures["cut_visits"]) == (2, 1, 1)
    assert figures["mean_dwell_s"] == figures["median_dwell_s"] == figures["max_dwell_s"] == 1.5


def test_a_tracks_events_name_the_class_its_first_event_named_though_its_vote_moves_on():
    """The parking clip's track 3 entered the lot as `car` and left it as `cell phone` (its vote moved on in
    between): an automation pairing entries with exits saw two classes. Here a car's vote turns to `person`
    inside the zone and before it crosses a line: its exit, crossing, visit and occupancy stay `car`."""
    analytics = Analytics([horizontal_line()], [square_zone(hysteresis_s=0.2)])
    path = [(50, 150)] * 3 + [(150, 150)] * 6 + [(150, 50)] * 4 + [(250, 50)] * 4  # in, up over the line, out
    occupancy = []
    for i, (x, y) in enumerate(path):
        vote = 1 if i < 6 else 0  # car, then person: the vote after the entry was confirmed
        analytics.update(Frame(i, i / 10, IMAGE), Detections([[x - 5, y - 20, x + 5, y]], [0.9], [vote], NAMES,
                                                             [7], [vote]))
        occupancy.append(dict(analytics.zones[0].occupancy))
    analytics.close()
    assert [(e.kind, e.class_name) for e in analytics.events] == [("enter", "car"), ("cross", "car"),
                                                                  ("exit", "car")]
    assert [v.class_name for v in analytics.zones[0].visits] == ["car"]
    assert analytics.lines[0].figures() == {"in": {}, "out": {"car": 1}}
    assert {name for counts in occupancy for name in counts} == {"car"}


def test_fractions_mean_the_frame_and_bad_regions_are_named():
    line = Region.parse("middle=0,0.5,1,0.5", "line")
    np.testing.assert_allclose(line.in_pixels(640, 360), [[0, 180], [640, 180]])
    assert Region.parse("door=10,20,300,20", "line").in_pixels(640, 360).tolist() == [[10, 20], [300, 20]]
    with pytest.raises(InputError, match="--line takes NAME=x1,y1,x2,y2"):
        Region.parse("middle=0,0.5,1", "line")
    with pytest.raises(InputError, match="needs 3 or more points"):
        Region.of({"name": "z", "points": [[0, 0], [1, 1]]}, "zone")


def test_a_line_or_zone_wholly_outside_the_frame_is_warned_of_once_each(caplog):
    """Accepted (a pixel line may be meant for a larger camera), but never silently: it can count nothing. A line
    across a corner, a zone holding the whole frame and one overlapping it are inside (the controls)."""
    outside = [Region.parse("far=700,0,900,300", "line"), Region.parse("above=-50,-40,600,-40,300,-10", "zone")]
    inside = [Region.parse("corner=600,-20,660,40", "line"),
              Region.parse("all=-10,-10,700,-10,700,400,-10,400", "zone"),
              Region.parse("part=600,300,800,300,800,500", "zone")]
    lines, zones = [outside[0], inside[0]], [outside[1], *inside[1:]]
    Analytics.build(lines, zones, 640, 352, "bottom-center", 0.5, 0.5, False)
    warned = [r.getMessage() for r in caplog.records]
    assert warned == ["line 'far' lies wholly outside the 640x352 frame: it will count nothing",
                      "zone 'above' lies wholly outside the 640x352 frame: it will count nothing"]


@pytest.mark.parametrize(("spec", "kind", "message"), [
    ({"name": "l", "points": [[0.5, 0.5], [0.5, 0.5]]}, "line", "its two points are the same"),
    ({"name": "z", "points": [[0, 0], [5, 5], [10, 10]]}, "zone", "it has no area"),
    ({"name": "z", "points": [[0, 0], [10, 0], [0, 10], [10, 10]]}, "zone", "its border crosses itself"),
    ({"name": "z", "points": [[0, 0], [float("nan"), 0], [0, 10]]}, "zone", "points must be finite"),
])
def test_degenerate_lines_and_zones_are_refused(spec, kind, message):
    with pytest.raises(InputError, match=message):
        Region.of(spec, kind)


def test_names_are_unique_across_lines_and_zones():
    from vidpipe.config import PipelineConfig

    with pytest.raises(InputError, match="two lines are named 'door'"):
        PipelineConfig(lines=["door=0,0.5,1,0.5", "door=0.5,0,0.5,1"])
    with pytest.raises(InputError, match="a line and a zone are both named 'door'"):
        PipelineConfig(lines=["door=0,0.5,1,0.5"], zones=["door=0,0,1,0,1,1"])
    PipelineConfig(lines=["a=0,0.5,1,0.5"], zones=["b=0,0,1,0,1,1"])  # distinct names are fine


def test_segment_intersection():
    a, b = np.array([0.0, 0.0]), np.array([10.0, 10.0])
    assert segments_intersect(a, b, np.array([0.0, 10.0]), np.array([10.0, 0.0]))
    assert not segments_intersect(a, b, np.array([20.0, 0.0]), np.array([30.0, 10.0]))
    assert segments_intersect(a, b, np.array([10.0, 10.0]), np.array([20.0, 0.0]))  # touching at an end


def test_cars_crossing_a_real_road_match_a_count_by_eye(tmp_path, browser):
    """suburban-traffic.mp4 with a line across the road at 55% of the height. Counted by watching the clip
    (two frames a second, the line drawn on them): 8 vehicles cross it coming toward the camera (white car
    at 1 s, red car 3 s, grey car 5 s, white pickup 7 s, white SUV 10 s, black SUV 17.5 s, black sedan 19.5 s,
    grey SUV 29.5 s) and none the other way. vidpipe must be within 1 of each. The report's Answers section,
    read in a browser, and the terminal say what summary.json says."""
    import json

    import pandas as pd

    from conftest import SUBURBAN, run_cli

    result = run_cli("run", str(SUBURBAN), "-o", str(tmp_path), "--line", "road=0,0.55,1,0.55", "--zone",
                     "near=0.3,0.5,0.9,0.5,0.9,1,0.3,1", "--heatmap", "--no-video", "-q")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    counted = {d: sum(summary["lines"]["road"][d].values()) for d in ("in", "out")}
    assert abs(counted["in"] - 8) <= 1 and counted["out"] <= 1, summary["lines"]
    assert f"line road: in {counted['in']}" in result.stdout
    events = pd.read_parquet(tmp_path / "events.parquet")
    assert list(events.columns) == ["video", "frame", "time_s", "track_id", "linked_id", "class_name", "kind",
                                    "name", "direction"]
    assert (events["kind"] == "cross").sum() == counted["in"] + counted["out"]
    zone = summary["zones"]["near"]
    entries = events[(events["name"] == "near")]
    assert zone["visits"] == (entries["kind"] == "exit").sum() == (entries["kind"] == "enter").sum() > 0
    visits = pd.read_parquet(tmp_path / "visits.parquet")
    assert len(visits) == zone["visits"] and zone["complete_visits"] + zone["cut_visits"] == zone["visits"]
    complete = visits[~(visits["cut_at_start"] | visits["cut_at_end"])]
    assert len(complete) == zone["complete_visits"] > 0  # the cars drive out of the picture through the zone
    assert zone["max_dwell_s"] == round(complete["dwell_s"].max(), 3)
    frames = pd.read_parquet(tmp_path / "frames.parquet")
    assert frames["near_n"].max() == zone["peak_occupancy"]
    assert (tmp_path / "heatmap.png").stat().st_size > 10_000
    assert [r["name"] for r in summary["regions"]] == ["road", "near"]

    browser.get((tmp_path / "report.html").as_uri())
    sections = [s.get_attribute("id") for s in browser.find_elements("tag name", "section")]
    assert sections[0] == "answers" and {"regions", "line-counts", "dwell", "heatmap"} <= set(sections)

    def table(element_id: str) -> list[list[str]]:
        rows = browser.find_elements("css selector", f"#{element_id} tbody tr")
        return [[cell.text for cell in row.find_elements("tag name", "td")] for row in rows]

    lines = {(name, direction): (int(n), detail) for name, direction, n, detail in table("answers-lines")}
    for direction in ("in", "out"):
        by_class = summary["lines"]["road"][direction]
        assert lines["road", direction] == (sum(by_class.values()), ", ".join(f"{c} {n}" for c, n in
                                                                            by_class.items()) or "-")
    (row,) = table("answers-zones")
    keys = ("visits", "complete_visits", "cut_visits", "mean_dwell_s", "median_dwell_s", "max_dwell_s",
            "peak_occupancy")
    assert row == ["near"] + ["-" if zone[k] is None else str(zone[k]) for k in keys]
    assert {c: int(n) for c, n in table("answers-objects")} == summary["tracks_per_class"]
    assert [r[1] for r in table("regions-table")] == ["road", "near"]
    assert browser.execute_script("const i = document.getElementById('regions-picture'); "
                                  "return i.complete && i.naturalWidth") == summary["input"]["width"]


def test_pedestrians_crossing_a_walkway_match_a_count_by_eye(tmp_path):
    """walkway-pedestrians.mp4 (../shared) with a vertical line down the middle, people only. Counted by
    watching the clip, every 0.5 s from 5 s to 18 s and every 2 s elsewhere, the line drawn on the frames,
    then around 20-22 s frame by frame: everyone crosses right to left (`in` for a line drawn top to bottom):
    two men together at 2-4 s, two women far back at 6.5-7.5 s, a group of seven at 11-15 s (a pair in red,
    one with a blue bag, a man in black, one in a blue shirt, two in black), one runner at 21.3 s: 12 in, 0
    out. Before confirmed crossings vidpipe counted 13 in and 1 out (a person jittering on the line)."""
    import json

    from conftest import run_cli, shared_path

    clip = shared_path("sample_videos", "walkway-pedestrians.mp4")
    result = run_cli("run", str(clip), "-o", str(tmp_path), "--line", "middle=0.5,0,0.5,1", "--classes", "person",
                     "--no-video", "--no-report", "-q")
    assert result.returncode == 0, result.stderr
    counts = json.loads((tmp_path / "summary.json").read_text())["lines"]["middle"]
    counted = {d: sum(counts[d].values()) for d in ("in", "out")}
    assert abs(counted["in"] - 12) <= 1 and counted["out"] <= 1 and abs(sum(counted.values()) - 12) <= 1, counted


def test_a_long_zone_name_is_drawn_whole_inside_the_frame():
    """A 39-character name at the right edge of a 240 px frame: the text shrinks to fit its black patch in
    the frame (it used to run off the frame's edge, cut)."""
    from vidpipe.analytics import Analytics

    name = "MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM"  # wide, dense glyphs: a cut shows
    analytics = Analytics.build([], [Region.of({"name": name, "points": [[200, 40], [239, 40], [239, 90]]}, "zone")],
                                240, 100, "bottom-center", 0.5, 0.5, heatmap=False)
    canvas = np.full((100, 240, 3), 128, np.uint8)
    analytics.draw_names(canvas)
    patch = (canvas == 0).all(axis=2)
    text = (canvas > 200).all(axis=2)
    rows = np.flatnonzero(patch.any(axis=1))
    columns = np.flatnonzero(patch[rows].any(axis=0))
    assert len(rows) and columns.min() >= 0
    assert np.flatnonzero(text.any(axis=0)).max() < columns.max() - 1  # the text ends inside its patch


@pytest.mark.parametrize("points", [[[80, 320], [560, 320], [560, 40]],
                                    [[40, 40], [140, 40], [140, 260], [600, 260], [600, 340], [40, 340]]],
                         ids=["triangle", "concave-L"])
def test_a_zones_name_is_drawn_inside_the_zone(points):
    """A triangle whose bounding box's top-left corner lies outside it, and an L whose centroid lies outside
    it: the name's black patch and its text are drawn wholly inside the zone (they used to sit above the
    bounding box's corner, outside the zone)."""
    from vidpipe.analytics import Analytics

    analytics = Analytics.build([], [Region.of({"name": "queue", "points": points}, "zone")], 640, 360,
                                "bottom-center", 0.5, 0.5, heatmap=False)
    canvas = np.full((360, 640, 3), 128, np.uint8)
    analytics.draw_names(canvas)
    drawn = (canvas != 128).any(axis=2)  # the patch and the text on it
    ys, xs = np.nonzero(drawn)
    assert len(xs) > 200
    polygon = np.asarray(points, np.float32)
    outside = [(x, y) for x, y in zip(xs.tolist(), ys.tolist()) if cv2.pointPolygonTest(polygon, (x, y), False) < 0]
    assert not outside, f"{len(outside)} of {len(xs)} pixels outside, e.g. {outside[:3]}"


def test_the_heatmaps_legend_covers_none_of_the_scene():
    """The parking clip's first frame with a car's track in its lower left: the colour scale is drawn in a
    strip beside the scene, whose pixels away from the heat are the frame's own, the top right (where the
    legend's panel used to darken it) included; the strip holds the colour bar."""
    import av

    from conftest import PARKING
    from vidpipe.analytics import Heatmap

    with av.open(str(PARKING)) as container:
        image = next(container.decode(video=0)).to_ndarray(format="bgr24")
    h, w = image.shape[:2]
    heatmap = Heatmap(w, h)
    for i in range(25):
        heatmap.update(Frame(i, i / 12.5, image), Detections([[100, 300, 160, 400]], [0.9], [1], NAMES, [7]))
    out = heatmap.render()
    assert out.shape[0] == h and out.shape[1] > w
    scene, strip = out[:, :w], out[:, w:]
    assert np.array_equal(scene[:, w // 2:], image[:, w // 2:])  # the right half: no heat, and no legend on it
    assert not np.array_equal(scene[h // 2:, :w // 3], image[h // 2:, :w // 3])  # the heat is drawn
    hsv = cv2.cvtColor(strip, cv2.COLOR_BGR2HSV)
    assert (hsv[..., 1] > 200).sum() > 500  # the colour bar, saturated from blue to red


def test_two_linked_tracks_crossing_a_line_the_same_way_count_once_and_a_crossing_back_between_keeps_both():
    """One object's two tracks, joined by the offline linking, each cross the line downward: an object cannot
    cross one way twice without crossing back, so the second is the first counted again and is dropped (events
    and counts); one that crossed back between counts every crossing; unlinked tracks keep theirs."""
    def crossings(links, back: bool):
        analytics = Analytics([horizontal_line()])
        downward = [(50, 90), (50, 95)] + [(50, 110)] * 6
        for track, path, start in [(1, downward, 0), (2, [(50, 120)] + [(50, 80)] * 6, 10), (3, downward, 20)]:
            if track == 2 and not back:
                continue
            analytics.events += observe(analytics.lines[0], path, track=track, start=start)
        analytics.merge_linked(links)
        return [(e.track_id, e.direction) for e in analytics.events], analytics.lines[0].figures()

    assert crossings({}, back=False) == ([(1, "in"), (3, "in")], {"in": {"car": 2}, "out": {}})
    assert crossings({3: 1}, back=False) == ([(1, "in")], {"in": {"car": 1}, "out": {}})
    assert crossings({2: 1, 3: 1}, back=True) == ([(1, "in"), (2, "out"), (3, "in")],
                                                  {"in": {"car": 2}, "out": {"car": 1}})

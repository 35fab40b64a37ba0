"""Cuts between shots end every track: PySceneDetect's content detector on real clips, and no track of the
shipped detector spans a cut of the street montage.

The montage's cuts were found by watching it: frames 28-31, 74-77, 135-138, 185-188 and 240-243 tiled with
their numbers and times; the picture changes to another shot at frames 30 (a street from above to a man
among cars), 76 (a taxi to a cyclist), 137 (the cyclist to a street through a fence), 187 (the street to a
pedestrian's legs by a bicycle) and 242 (to a close-up of the bicycle), at 25 fps.
"""

from __future__ import annotations

import json

import av
import numpy as np
import pandas as pd
import pytest
from test_tracking import box_at, frame, ids_by_object

import vidpipe
from conftest import PARKING, SUBURBAN, run_cli, shared_path
from vidpipe.config import PipelineConfig
from vidpipe.errors import InputError
from vidpipe.tracking import ByteTrack, SceneCuts
from vidpipe.tracking.cuts import scene_cuts

MONTAGE_CUTS_S = [1.20, 3.04, 5.48, 7.48, 9.68]  # frames 30, 76, 137, 187, 242 at 25 fps, by watching
VEHICLES = ["car", "truck", "bus", "motorcycle"]


def cuts_in(path, every: int = 1) -> list[float]:
    """The cut times SceneCuts finds in every `every`th frame of a real clip, decoded with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        cuts = SceneCuts(float(stream.average_rate) / every)
        start = stream.start_time or 0
        found = []
        for index, picture in enumerate(container.decode(stream)):
            time_s = float((picture.pts - start) * stream.time_base)
            if index % every == 0 and cuts(picture.to_ndarray(format="bgr24"), time_s):
                found.append(time_s)
    return found


def test_cuts_are_found_on_the_frame_the_shot_changes_and_never_on_a_camera():
    """Each of the montage's five cuts on its own frame; none on the parking lot (a car filling a third of the
    picture), the suburban road, nor the parking lot at every second frame (6 fps: frames 0.16 s apart are
    not compared, and there the content detector alone passes its threshold with no cut)."""
    found = cuts_in(shared_path("sample_videos", "street-montage.mp4"))
    assert np.allclose(found, MONTAGE_CUTS_S, atol=0.02), found
    assert cuts_in(PARKING) == [] and cuts_in(SUBURBAN) == []
    assert cuts_in(PARKING, every=2) == []


def test_a_cut_ends_every_track_and_none_is_relinked_across_it():
    """Three people stand still, one of them unseen for the last 0.1 s before the video cuts (to three others
    where they stood): after the cut every box has a new id, also where the lost track would have been
    matched again; without the cut the same boxes keep their ids (the control)."""
    def play(cut: bool) -> tuple[dict, dict]:
        tracker = ByteTrack(fps=30)
        scenes = [[("a", box_at(100, 100), 0.9), ("b", box_at(300, 100), 0.9)] + ([("c", box_at(500, 100), 0.9)]
                                                                                    if t < 7 else [])
                  for t in range(10)]
        before = ids_by_object(tracker, scenes)[6]
        if cut:
            tracker.cut(10 / 30)
        again = [(k, b, s) for scene in scenes[:1] for k, b, s in scene]
        after = [tracker.update(frame([b for _, b, _ in again]), (10 + t) / 30) for t in range(5)]
        return before, dict(zip("abc", after[-1].track_id.tolist()))

    (before, after), (_, kept) = play(cut=True), play(cut=False)
    assert before == {"a": 1, "b": 2, "c": 3} == kept
    assert sorted(after.values()) == [4, 5, 6]


def test_no_track_of_the_shipped_detector_spans_a_cut_of_the_montage(tmp_path):
    """End to end (YOLOv8n, vehicles): every track lies within one shot, and summary.json lists the cuts; with
    `--scene-cuts off`, the control, a car's track runs on into the next shot (as tracks did before)."""
    path = shared_path("sample_videos", "street-montage.mp4")

    def spanning(tracks: pd.DataFrame) -> int:
        return sum(((tracks.first_time_s < cut) & (tracks.last_time_s >= cut)).sum() for cut in MONTAGE_CUTS_S)

    result = vidpipe.run(path, tmp_path / "cuts", classes=VEHICLES, video=False, report=False)
    tracks = pd.read_parquet(result.outputs["tracks"])
    assert len(tracks) >= 5 and spanning(tracks) == 0
    assert np.allclose(json.loads(result.outputs["summary"].read_text())["input"]["scene_cuts_s"], MONTAGE_CUTS_S,
                       atol=0.02)
    off = run_cli("run", str(path), "-o", str(tmp_path / "off"), "--classes", ",".join(VEHICLES), "--no-video",
                  "--no-report", "--scene-cuts", "off", "--quiet")
    assert off.returncode == 0, off.stderr
    assert spanning(pd.read_parquet(tmp_path / "off" / "tracks.parquet")) >= 1


def test_a_change_of_frame_size_is_compared_afresh_and_an_integer_rate_is_taken():
    """A stream that changes its frame size (a broadcast switching resolution) starts a new comparison instead
    of failing on two shapes; a rate given as an integer works as one given as a float."""
    cuts = SceneCuts(25)
    with av.open(str(PARKING)) as container:
        pictures = [p.to_ndarray(format="bgr24") for _, p in zip(range(4), container.decode(video=0))]
    assert not any(cuts(picture, k / 25) for k, picture in enumerate(pictures[:2]))
    assert not any(cuts(picture[:300, :600], (2 + k) / 25) for k, picture in enumerate(pictures[2:]))


def test_auto_looks_for_cuts_in_files_only_and_a_bad_mode_is_one_line(tmp_path):
    """A light going on changes a camera's picture as much as a cut: `auto` leaves live sources alone."""
    assert isinstance(scene_cuts("auto", live=False, fps=25), SceneCuts) and scene_cuts("auto", True, 25) is None
    assert isinstance(scene_cuts("on", live=True, fps=25), SceneCuts) and scene_cuts("off", False, 25) is None
    assert PipelineConfig(scene_cuts=False).scene_cuts == "off"  # YAML's bare `off`
    with pytest.raises(InputError, match="scene_cuts must be one of auto, on, off"):
        PipelineConfig(scene_cuts="sometimes")
    result = run_cli("run", str(PARKING), "--scene-cuts", "sometimes", "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr

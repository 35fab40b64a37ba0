"""The run session and the public seams around it: the typed summary, `Pipeline.stream`, viewers, sources
that say what they are, and supervision conversions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import vidpipe
from conftest import PARKING, SUBURBAN
from vidpipe.config import PipelineConfig
from vidpipe.detections import Detections
from vidpipe.live import open_live
from vidpipe.session import RunSession
from vidpipe.sources import Sampling, open_source
from vidpipe.summary import RunSummary


@pytest.fixture(scope="module")
def pipeline():
    return vidpipe.Pipeline(PipelineConfig(max_frames=24, video=False, mot=False))


def test_summary_is_a_typed_record_that_reads_back_from_its_json(pipeline, tmp_path):
    result = pipeline.run(SUBURBAN, tmp_path, progress=False)
    written = json.loads((tmp_path / "summary.json").read_text())
    assert list(written)[:4] == ["vidpipe_version", "status", "input", "detector"]  # the keys users read
    assert written["frames_processed"] == result.summary.counts.frames_processed == 24
    assert written["detections"] == result.summary.counts.detections == len(pd.read_parquet(tmp_path /
                                                                                             "detections.parquet"))
    assert written["tracks"] == sum(written["tracks_per_class"].values()) == result.summary.counts.tracks
    assert [s["stage"] for s in written["stages"]] == ["read", "detect", "motion", "cuts", "write", "report"]
    back = RunSummary.read(tmp_path / "summary.json")
    assert back.to_dict() == written == result.summary.to_dict() and back.counts == result.summary.counts


def test_stream_gives_tracked_pairs_equal_to_a_run(pipeline, tmp_path):
    run = pipeline.run(SUBURBAN, tmp_path / "run", progress=False)
    table = pd.read_parquet(run.outputs["detections"])
    pairs = list(pipeline.stream(SUBURBAN))
    assert [frame.index for frame, _ in pairs] == list(range(24))
    streamed = np.concatenate([d.track_id for _, d in pairs])
    assert (streamed >= 1).all() and streamed.tolist() == table["track_id"].tolist()  # tracked, same ids
    np.testing.assert_allclose(np.concatenate([d.xyxy for _, d in pairs]), table[["x1", "y1", "x2", "y2"]])


def test_stream_can_write_the_usual_outputs_and_a_loop_that_stops_early_is_recorded(pipeline, tmp_path):
    for _ in pipeline.stream(SUBURBAN, tmp_path / "all"):
        pass
    assert json.loads((tmp_path / "all" / "summary.json").read_text())["status"] == "complete"
    for frame, _ in pipeline.stream(SUBURBAN, tmp_path / "early"):
        if frame.index == 9:
            break
    summary = json.loads((tmp_path / "early" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["frames_processed"] == 10
    assert len(pd.read_parquet(tmp_path / "early" / "frames.parquet")) == 10
    assert not list((tmp_path / "early").glob("*.partial"))


class Recorder:
    """A viewer: gets the annotated frames, keeps no file."""

    def __init__(self) -> None:
        self.frames, self.closed = [], False

    def write(self, frame, detections) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True


def test_viewers_get_annotated_frames_and_no_file_is_expected_of_them(pipeline, tmp_path):
    source = open_source(SUBURBAN, Sampling(max_frames=12))
    viewer = Recorder()
    result = pipeline.process(source, tmp_path, progress=False, viewers=[viewer])
    source.close()
    assert viewer.closed and len(viewer.frames) == 12 and not hasattr(viewer, "path")
    original = [f.image for f in open_source(SUBURBAN, Sampling(max_frames=12))]
    assert any((shown.image != raw).any() for shown, raw in zip(viewer.frames, original))  # boxes were drawn
    assert set(result.outputs) == {"detections", "frames", "tracks", "report", "summary"}


def test_the_write_step_is_public_and_the_session_owns_the_outputs(pipeline, tmp_path):
    source = open_source(SUBURBAN, Sampling(max_frames=5))
    session = RunSession(pipeline.config, pipeline.detector, None, source, tmp_path)
    for frame, detections in pipeline.frames(source):
        session.write(frame, detections)
    result = session.finish("complete")
    source.close()
    assert result.summary.counts.frames_processed == 5 and result.summary.tracker is None
    assert len(pd.read_parquet(result.outputs["frames"])) == 5


def test_sources_declare_whether_they_are_live():
    file = open_source(PARKING)
    replay = open_live(str(PARKING))
    try:
        assert file.live is False and file.gaps == [] and replay.live is True and replay.gaps == []
        assert replay.info == file.info
    finally:
        file.close()
        replay.close()


def test_supervision_round_trip():
    sv = pytest.importorskip("supervision", reason="supervision is in the bench extra")
    names = ("person", "bicycle", "car")
    ours = Detections([[0, 0, 10, 10], [5, 5, 20, 30]], [0.9, 0.4], [0, 2], names, [3, 7])
    theirs = ours.to_supervision()
    assert isinstance(theirs, sv.Detections)
    assert theirs.tracker_id.tolist() == [3, 7] and theirs.data["class_name"].tolist() == ["person", "car"]
    back = Detections.from_supervision(theirs, names)
    for field in ("xyxy", "score", "class_id", "track_id"):
        np.testing.assert_array_equal(getattr(back, field), getattr(ours, field))
    untracked = Detections([[1, 2, 3, 4]], [0.5], [1], names).to_supervision()
    assert untracked.tracker_id is None  # supervision's way of saying "not tracked"
    assert Detections.from_supervision(untracked, names).track_id.tolist() == [-1]
    boxes_only = sv.Detections(xyxy=np.array([[0, 0, 4, 4]], np.float32), class_id=np.array([1]))
    assert Detections.from_supervision(boxes_only, names).score.tolist() == [1.0]

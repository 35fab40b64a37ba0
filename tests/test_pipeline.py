"""Pipeline configuration (defaults, presets, overrides) and use from Python."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd
import pytest
import yaml

import vidpipe
from conftest import REPO, SUBURBAN
from vidpipe.config import PipelineConfig, presets
from vidpipe.errors import InputError
from vidpipe.tracking import ByteTrackConfig


def test_default_yaml_writes_out_the_real_defaults():
    written = yaml.safe_load((REPO / "pipelines" / "default.yaml").read_text())
    assert written == asdict(PipelineConfig())
    assert written["trackers"]["bytetrack"] == asdict(ByteTrackConfig())


def test_presets_are_found_by_name_and_merge_over_defaults(tmp_path):
    assert {"default", "traffic", "people"} <= set(presets())
    people = PipelineConfig.load("people")
    assert people.classes == ["person"] and people.trails is True and people.iou == PipelineConfig().iou
    overridden = PipelineConfig.load("people", classes="person,bicycle", trails=None)
    assert overridden.classes == ["person", "bicycle"] and overridden.trails is True  # None means "not given"
    preset = tmp_path / "slow.yaml"
    preset.write_text("trackers:\n  bytetrack:\n    track_buffer: 150\n")
    slow = PipelineConfig.load(preset)
    assert slow.tracker_params()["track_buffer"] == 150
    assert slow.tracker_params()["track_high_thresh"] == ByteTrackConfig().track_high_thresh  # untouched: defaults


def test_conf_defaults_follow_the_tracker():
    assert PipelineConfig().detection_conf() == 0.1  # ByteTrack's low threshold
    assert PipelineConfig(tracker="none").detection_conf() == 0.25
    assert PipelineConfig(conf=0.4).detection_conf() == 0.4


def test_bad_settings_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="unknown parameter"):
        PipelineConfig.from_dict({"trackers": {"bytetrack": {"buffer": 3}}})
    with pytest.raises(InputError, match="table_format"):
        PipelineConfig(table_format="xlsx")
    broken = tmp_path / "broken.yaml"
    broken.write_text("classes: [car\n")
    with pytest.raises(InputError, match="not valid YAML"):
        PipelineConfig.load(broken)


def test_run_from_python_reuses_the_model(tmp_path):
    pipeline = vidpipe.Pipeline(PipelineConfig.load("traffic", max_frames=10, video=False))
    first = pipeline.run(SUBURBAN, tmp_path / "a", progress=False)
    second = pipeline.run(SUBURBAN, tmp_path / "b", progress=False)
    a, b = (pd.read_parquet(r.outputs["detections"]) for r in (first, second))
    pd.testing.assert_frame_equal(a, b)  # a fresh tracker per run: the same ids again
    assert first.summary.counts.frames_processed == 10 and set(a["class_name"]) <= {"car", "truck", "bus"}


def test_stale_summary_is_removed_before_a_new_run(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(InputError):
        vidpipe.run(SUBURBAN, tmp_path, start=1000)
    assert not (tmp_path / "summary.json").exists()

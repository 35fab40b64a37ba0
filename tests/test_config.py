"""One configuration, checked as a whole when it is built: each default defined once, every bad value named
before a model is loaded or a file written, for `run`, `live` and `batch` alike."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from conftest import PARKING, run_cli
from vidpipe.config import PipelineConfig
from vidpipe.detectors import DetectorSettings
from vidpipe.errors import InputError
from vidpipe.sinks import VideoSink
from vidpipe.sources import Sampling


def test_detector_and_sampling_settings_come_from_the_config_with_their_own_defaults():
    config = PipelineConfig()
    for f in fields(DetectorSettings):
        assert hasattr(config, f.name), f"PipelineConfig lacks DetectorSettings.{f.name}"
        if f.name != "conf":  # None in the config: follows the tracker
            assert getattr(config, f.name) == f.default, f.name
    for f in fields(Sampling):
        assert getattr(config, f.name) == f.default, f.name
    assert config.detector_settings().conf == 0.1  # ByteTrack's low threshold
    assert PipelineConfig(tracker="none").detector_settings().conf == DetectorSettings().conf
    assert PipelineConfig(iou=0.5, classes="car, bus").detector_settings().classes == ["car", "bus"]
    assert inspect.signature(VideoSink).parameters["preset"].default == config.video_preset
    assert inspect.signature(VideoSink).parameters["crf"].default == config.video_crf


@pytest.mark.parametrize("values, message", [
    ({"stride": 0}, "--stride must be at least 1"),
    ({"sample_fps": 1, "stride": 2}, "either --stride or --sample-fps"),
    ({"end": 1.0, "start": 2.0}, "must be after --start"),
    ({"conf": "abc"}, "conf must be a number, got 'abc'"),
    ({"iou": 2}, "iou must be a number in [0, 1], got 2"),
    ({"imgsz": 0}, "imgsz must be an integer from 32 to 4096"),
    ({"threads": -1}, "threads must be at least 1"),
    ({"batch_size": "four"}, "batch_size must be an integer"),
    ({"video_preset": "bogus"}, "video_preset must be one of ultrafast"),
    ({"video_crf": 99}, "video_crf must lie in [0, 51]"),
    ({"precision": "fp8"}, "unknown precision 'fp8'"),
    ({"trackers": {"bytetrack": {"track_buffer": -1}}}, "track_buffer must be >= 0"),
    ({"trackers": {"sort": {}}}, "unknown tracker 'sort'"),
    ({"bytetrack": {"track_buffer": 90}}, "tracker parameters go under trackers:"),
    ({"labels": "class,name"}, "labels: unknown part(s) 'name'"),
    ({"detect_every": 0}, "detect_every must be at least 1"),
    ({"detect_every": 2, "tracker": "none"}, "--detect-every needs a tracker"),
    ({"color_by": "score"}, "color_by must be one of track, class"),
])
def test_every_bad_value_fails_when_the_config_is_built(values, message):
    with pytest.raises(InputError) as error:
        PipelineConfig.from_dict(values)
    assert message in str(error.value)


def test_a_second_tracker_needs_only_its_own_entry():
    """Tracker parameters are a mapping by tracker name, filled with each tracker's defaults."""
    config = PipelineConfig.from_dict({"trackers": {"bytetrack": {"track_buffer": 90}}})
    assert config.trackers["bytetrack"]["track_buffer"] == 90
    assert config.trackers["bytetrack"]["track_low_thresh"] == 0.1
    assert config.tracker_params() == config.trackers["bytetrack"]
    assert PipelineConfig(tracker="none").tracker_params() == {}


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("vidpipe: error:"), result.stderr
    return lines[0]


def test_run_reports_a_bad_setting_before_loading_the_model(tmp_path):
    result = run_cli("run", str(PARKING), "--stride", "0", "--model", str(tmp_path / "no-such-model.pt"),
                     "-o", str(tmp_path / "out"))
    assert "--stride must be at least 1" in one_error_line(result)  # the model path was never looked at
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", [["--stride", "2"], ["--sample-fps", "1"], ["--start", "3"], ["--end", "9"],
                                    ["--batch-size", "8"], ["--sequential"], ["--sequence-fps", "25"]])
def test_live_rejects_what_it_cannot_honour_before_it_starts(tmp_path, option):
    result = run_cli("live", str(PARKING), *option, "-o", str(tmp_path / "out"), "-q")
    assert f"{option[0]}: not for live sources" in one_error_line(result)
    assert not (tmp_path / "out").exists()


def test_live_reports_a_bad_setting_before_it_starts(tmp_path):
    result = run_cli("live", str(PARKING), "--conf", "2", "-o", str(tmp_path / "out"), "-q")
    assert "conf must be a number in [0, 1]" in one_error_line(result)
    assert not (tmp_path / "out").exists()


def test_batch_reports_a_bad_setting_as_usage_not_as_failed_videos(tmp_path):
    result = run_cli("batch", str(PARKING), "-o", str(tmp_path / "corpus"), "--stride", "0", "-q")
    assert "--stride must be at least 1" in one_error_line(result)
    assert not (tmp_path / "corpus").exists()  # no video was attempted, none recorded as failed


def test_yaml_only_settings_have_options(tmp_path):
    """--video-crf and --top-k reach the outputs; the tracker's parameters are named in --help."""
    result = run_cli("run", str(PARKING), "-o", str(tmp_path), "--max-frames", "3", "--top-k", "1",
                     "--video-crf", "35", "--no-mot", "-q")
    assert result.returncode == 0, result.stderr
    import pandas as pd

    columns = list(pd.read_parquet(tmp_path / "frames.parquet").columns)
    assert "top1_class" in columns and "top2_class" not in columns
    assert "trackers:" in run_cli("run", "--help").stdout

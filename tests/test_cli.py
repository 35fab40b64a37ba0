"""`vidpipe run` end to end on the shipped clips, with the real model: what a user gets, and bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from test_sources import write_zero_frame_video

from conftest import PARKING, REPO, SUBURBAN, frame_times, run_cli, top_level_atoms
from vidpipe.detectors.runtimes import resolve_runtime
from vidpipe.detectors.yolo import DEFAULT_MODEL
from vidpipe.sources import Sampling, open_source

COLUMNS = ["video", "frame", "time_s", "track_id", "linked_id", "class_id", "class_name", "track_class", "score",
           "detected", "x1", "y1", "x2", "y2"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """The whole parking-lot clip (audio, 12.5 fps) with default settings (YOLOv8n + ByteTrack)."""
    out = tmp_path_factory.mktemp("run") / "parking"
    result = run_cli("run", str(PARKING), "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    return out, result


def test_run_prints_where_the_outputs_are(full_run):
    out, result = full_run
    for name in ("annotated.mp4", "detections.parquet", "frames.parquet", "tracks.txt", "summary.json"):
        assert str(out / name) in result.stdout
        assert (out / name).stat().st_size > 0
    assert not list(out.glob("*.partial"))
    assert "Traceback" not in result.stderr


def test_annotated_video_matches_the_input(full_run):
    out, _ = full_run
    assert frame_times(out / "annotated.mp4") == pytest.approx(frame_times(PARKING), abs=1e-6)
    with av.open(str(out / "annotated.mp4")) as written, av.open(str(PARKING)) as source:
        w, s = written.streams.video[0], source.streams.video[0]
        assert (w.codec_context.width, w.codec_context.height) == (768, 432)
        assert w.average_rate == s.average_rate == 12.5
        assert abs(float(w.duration * w.time_base) - float(s.duration * s.time_base)) < 1 / 12.5
        assert written.streams.audio[0].codec_context.name == "aac"
        assert abs(written.duration - source.duration) / 1e6 < 1 / 12.5


def test_annotated_video_has_its_index_first_so_browsers_play_it_at_once(full_run):
    out, _ = full_run
    atoms = top_level_atoms(out / "annotated.mp4")
    assert "moov" in atoms and "mdat" in atoms and atoms.index("moov") < atoms.index("mdat"), atoms


def test_the_one_time_export_message_has_a_line_of_its_own(tmp_path):
    """The export (and the int8 model, and the choice of precision) happen while the progress bar is drawn:
    their messages must not be glued onto the bar, nor NNCF's own bars printed."""
    env = {**os.environ, "VIDPIPE_CACHE": str(tmp_path / "cache")}  # an empty cache: the model is exported
    result = subprocess.run([sys.executable, "-m", "vidpipe", "run", str(SUBURBAN), "-o", str(tmp_path / "out"),
                             "--max-frames", "8", "--runtime", "openvino"],  # auto's choice on a CPU (not a GPU)
                            capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    for word in ("exporting", "quantizing", "--precision auto"):  # the last two where `auto` takes int8
        pieces = [p.strip() for p in re.split(r"[\r\n]", result.stderr) if word in p]
        assert all(p.startswith(f"vidpipe: {word}") for p in pieces), result.stderr
        assert pieces or word != "exporting", result.stderr
    assert "Statistics collection" not in result.stdout + result.stderr  # NNCF's bar


def test_tables_have_one_row_per_detection(full_run):
    out, _ = full_run
    summary = json.loads((out / "summary.json").read_text())
    detections = pd.read_parquet(out / "detections.parquet")
    frames = pd.read_parquet(out / "frames.parquet")
    assert list(detections.columns) == COLUMNS
    assert len(detections) == summary["detections"] > 50
    assert (detections["video"] == "parking-lot-cars").all()
    assert (detections["track_id"] >= 1).all()  # tracking on: every row belongs to a track
    tracks = pd.read_parquet(out / "tracks.parquet")  # every track; the summary counts the confirmed ones
    assert detections["track_id"].nunique() == len(tracks) == summary["tracks"] + summary["unconfirmed_tracks"]
    assert tracks["confirmed"].sum() == summary["tracks"]
    assert (detections[["x1", "x2"]].to_numpy() <= 768 + 1).all() and (detections["x1"] < detections["x2"]).all()
    times = dict(zip(range(377), frame_times(PARKING)))
    assert np.allclose(detections["time_s"], detections["frame"].map(times))
    assert frames["frame"].tolist() == list(range(377)) and summary["frames_processed"] == 377
    assert frames["n_detections"].sum() == len(detections)
    assert (frames["n_detections"] == 0).any()  # empty frames are rows too
    cars = (detections["class_name"] == "car").sum()
    assert 0 < frames["n_car"].sum() <= cars  # objects in view: the rows of confirmed tracks
    assert summary["status"] == "complete" and summary["source_frames_lost"] == 0
    assert summary["detections_per_class"]["car"] == cars


def test_mot_file_matches_the_detection_table(full_run):
    out, _ = full_run
    mot = np.loadtxt(out / "tracks.txt", delimiter=",", ndmin=2)
    detections = pd.read_parquet(out / "detections.parquet")
    assert mot.shape == (len(detections), 10)
    np.testing.assert_array_equal(mot[:, 0], detections["frame"] + 1)
    np.testing.assert_array_equal(mot[:, 1], detections["track_id"])
    np.testing.assert_allclose(mot[:, 4], detections["x2"] - detections["x1"], atol=0.01)


def test_annotated_frames_show_the_boxes(full_run):
    out, _ = full_run
    detections = pd.read_parquet(out / "detections.parquet")
    row = detections.sort_values("score").iloc[-1]
    drawn = next(f for f in open_source(out / "annotated.mp4") if f.index == row.frame).image
    original = next(f for f in open_source(PARKING) if f.index == row.frame).image
    x1, y1, y2 = int(row.x1), int(row.y1), int(row.y2)
    edge = slice(max(y1, 0) + 30, y2 - 5), slice(max(x1 - 1, 0), x1 + 2)
    assert np.abs(drawn[edge].astype(int) - original[edge].astype(int)).mean() > 30


def test_detections_through_the_cli_equal_ultralytics_predict(tmp_path):
    """--tracker none writes what the model sees: at full precision, the same boxes as YOLO.predict (the
    default runtime, OpenVINO, with vidpipe's own letterbox and NMS)."""
    from ultralytics import YOLO

    result = run_cli("run", str(PARKING), "-o", str(tmp_path), "--tracker", "none", "--start", "5",
                     "--max-frames", "6", "--no-video", "--precision", "fp32", "-q")
    assert result.returncode == 0, result.stderr
    table = pd.read_parquet(tmp_path / "detections.parquet")
    assert (table["track_id"] == -1).all() and len(table) > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["detector"]["runtime"] == resolve_runtime("auto", None, DEFAULT_MODEL)  # OpenVINO on a CPU
    assert summary["detector"]["precision"] == "fp32"
    model = YOLO(DEFAULT_MODEL)
    for frame in open_source(PARKING, Sampling(start=5, max_frames=6)):
        boxes = model.predict(frame.image, conf=0.25, verbose=False)[0].boxes
        rows = table[table["frame"] == frame.index]
        assert sorted(rows["class_id"]) == sorted(boxes.cls.numpy().astype(int))
        ours = rows.sort_values("score", ascending=False)[["x1", "y1", "x2", "y2"]].to_numpy()
        theirs = boxes.xyxy.numpy()[np.argsort(-boxes.conf.numpy())]
        np.testing.assert_allclose(ours, theirs, atol=1.0)


def test_preset_with_overrides(tmp_path):
    result = run_cli("run", str(SUBURBAN), "-o", str(tmp_path), "--pipeline", "traffic", "--classes", "car",
                     "--tracker", "none", "--table-format", "csv", "--no-video", "--sample-fps", "2",
                     "--max-frames", "12", "-q")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["detections.csv", "frames.csv", "presence.csv", "report.html",
                                                         "summary.json", "tracks.txt"]  # sampled: presence too
    table = pd.read_csv(tmp_path / "detections.csv")
    assert set(table["class_name"]) == {"car"} and (table["track_id"] == -1).all()
    frames = pd.read_csv(tmp_path / "frames.csv")
    assert len(frames) == 12 and np.allclose(np.diff(frames["time_s"]), 0.5, atol=1 / 24)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["tracker"] is None and summary["detector"]["classes"] == ["car"]
    assert summary["sampling"]["sample_fps"] == 2


def test_truncated_video_is_processed_up_to_the_cut(tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(PARKING.read_bytes()[:1_400_000])
    result = run_cli("run", str(cut), "-o", str(tmp_path / "out"), "--imgsz", "320", "-q")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["source_frames_lost"] == 377 - summary["frames_processed"] > 0
    assert f"{summary['source_frames_lost']} frame(s) could not be decoded" in result.stderr
    with av.open(str(tmp_path / "out" / "annotated.mp4")) as written:
        assert len(list(written.decode(video=0))) == summary["frames_processed"]


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda d: [str(d / "missing.mp4")], "does not exist"),
        (lambda d: [str(d)], "folder with no images"),
        (lambda d: [str(write_text(d / "notes.mp4", "plain text"))], "is not a readable video"),
        (lambda d: [str(write_zero_frame_video(d / "zero.mp4"))], "has no video stream"),
        (lambda d: [str(write_zero_frame_video(d / "zero.avi"))], "contains no decodable video frames"),
        (lambda d: [str(PARKING), "--classes", "person,unicorn"], "unknown class 'unicorn'"),
        (lambda d: [str(PARKING), "--model", str(d / "nope" / "model.pt")], "does not exist"),
        (lambda d: [str(PARKING), "--model", str(write_text(d / "bad.pt", "x"))], "cannot load model"),
        (lambda d: [str(PARKING), "--stride", "0"], "--stride must be at least 1"),
        (lambda d: [str(PARKING), "--pipeline", "nosuchpreset"], "pipeline nosuchpreset not found"),
        (lambda d: [str(PARKING), "--pipeline", str(write_text(d / "p.yaml", "colour: red"))], "unknown key"),
        (lambda d: [str(PARKING), "--pipeline", str(write_text(d / "c.yaml", "conf: abc"))], "conf must be a number"),
        (lambda d: [str(PARKING), "--model", str(write_text(d / "model.txt", "x"))], "cannot load model"),
        (lambda d: [str(PARKING), "--model", str(d)], "cannot load model"),
        (lambda d: [str(PARKING), "--model", "yolo-nonexistent-9.pt"], "not found locally and could not be"),
        (lambda d: [str(PARKING), "--imgsz", "0"], "imgsz must be an integer from 32 to 4096"),
        (lambda d: [str(PARKING), "--threads", "-1"], "threads must be at least 1"),
        (lambda d: [str(PARKING), "--device", "tpu9"], "unknown device 'tpu9'"),
        (lambda d: [str(PARKING), "--video-preset", "bogus"], "video_preset must be one of"),
        (lambda d: [str(PARKING), "--iou", "2"], "iou must be a number in [0, 1]"),
        (lambda d: [str(PARKING), "--table-format", "xls"], "'xls' is not one of 'parquet', 'csv'"),
    ],
    ids=["missing", "empty-folder", "text-as-mp4", "zero-frame-mp4", "zero-frame-avi", "unknown-class",
         "missing-model", "unreadable-model", "bad-stride", "unknown-preset", "bad-preset-key", "preset-conf-abc",
         "text-model", "folder-model", "unknown-model-offline", "imgsz-0", "threads-negative", "device-tpu9",
         "bogus-video-preset", "iou-2", "table-format-xls"],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, make_args, message):
    (tmp_path / "in").mkdir()
    out = tmp_path / "out"
    result = run_cli("run", *make_args(tmp_path / "in"), "--out", str(out), "-q")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidpipe: error:") and message in lines[0], result.stderr
    assert not out.exists() or not list(out.iterdir())  # nothing left behind, not even a partial file


def test_the_quickstart_clip_shows_what_the_model_gets_right(tmp_path):
    """The README's first command runs a shipped clip on which the bundled model is right: its tracks are
    cars and trucks (the overhead parking lot it used to run gave `cell phone #3` on a car)."""
    readme = (REPO / "README.md").read_text()
    command = re.search(r"```bash\n(pip install -e \. && vidpipe run (\S+))\n```", readme)
    assert command, "the README's quickstart must start with the install-and-run command"
    clip = REPO / command.group(2)
    assert clip.is_file() and clip.parent == REPO / "sample_videos"
    result = run_cli("run", str(clip), "-o", str(tmp_path), "--max-frames", "240", "--no-video", "-q")
    assert result.returncode == 0, result.stderr
    tracks = pd.read_parquet(tmp_path / "tracks.parquet")
    assert len(tracks) >= 10 and tracks["class_name"].isin(["car", "truck"]).mean() >= 0.8, tracks["class_name"]


def test_a_gpu_asked_for_where_there_is_none_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: --device cuda is valid here")
    result = run_cli("run", str(PARKING), "--device", "cuda", "-o", str(tmp_path / "out"), "-q")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "torch sees 0 CUDA GPU(s)" in lines[0], result.stderr


def test_version_and_models():
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("vidpipe, version ")
    models = run_cli("models")
    assert models.returncode == 0
    assert "yolo" in models.stdout and "ok" in models.stdout and "yolov8n.pt" in models.stdout
    assert "traffic" in models.stdout


def test_a_reader_that_goes_away_ends_the_command_quietly():
    """`vidpipe models | head -1`: the pipe is closed before vidpipe writes; no error message, no traceback."""
    process = subprocess.Popen([sys.executable, "-m", "vidpipe", "models"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=REPO)
    process.stdout.close()  # long before the command has imported anything and printed
    stderr = process.communicate(timeout=120)[1].decode()
    assert process.returncode == 1
    assert stderr == "", stderr


def test_help_does_not_import_frameworks():
    code = ("import sys; from vidpipe.cli import main\n"
            "try:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'ultralytics', 'tensorflow', 'cv2', 'pandas') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr

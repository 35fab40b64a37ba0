"""`vidpipe batch`: many videos, resumable after a kill, bad files isolated, same tables on any engine."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import PARKING, REPO, SUBURBAN, frame_times, run_cli
from vidpipe.config import PipelineConfig
from vidpipe.corpus import MARKER, collect, run_batch, sanitize_id
from vidpipe.errors import InputError
from vidpipe.segments import segment_table

YT8M = ["--pipeline", "yt8m"]  # 1 fps, tables only: quick


@pytest.fixture()
def corpus(tmp_path) -> Path:
    """Two real clips (one under a YouTube-style id), a corrupt file, and a manifest naming a missing path."""
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(PARKING, folder / "parking-lot-cars.mp4")
    shutil.copy(SUBURBAN, folder / "dQw4w9WgXcQ.mp4")
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(5000))
    return folder


def test_video_ids_are_safe_folder_names():
    assert sanitize_id("dQw4w9WgXcQ") == "dQw4w9WgXcQ"  # YouTube ids pass unchanged
    for raw in ("../../etc/passwd", "/etc/passwd", "a/b\\c", "..", ".hidden", "x/../../y"):
        clean = sanitize_id(raw)
        assert "/" not in clean and "\\" not in clean and ".." not in clean and not clean.startswith(".")
        assert clean
    assert sanitize_id("clip 01 (final)") == "clip_01__final_"


def test_inputs_from_folders_globs_and_manifests(corpus, tmp_path):
    manifest = tmp_path / "list.csv"
    manifest.write_text("video_id,path\n../escape,videos/parking-lot-cars.mp4\n,videos/dQw4w9WgXcQ.mp4\n")
    text = tmp_path / "list.txt"
    text.write_text("# one per line\nvideos/dQw4w9WgXcQ.mp4\nhttps://example.com/clips/abc123.mp4?x=1\n")
    items = collect([str(corpus), str(tmp_path / "videos" / "park*.mp4"), str(manifest), str(text)])
    ids = [i.video_id for i in items]
    assert ids[:3] == ["corrupt", "dQw4w9WgXcQ", "parking-lot-cars"]  # folder, natural order
    assert ids[3] == "parking-lot-cars-2"  # the glob names it again: a second, distinct id
    assert ids[4] == "__escape" and items[4].uri == str(tmp_path / "videos" / "parking-lot-cars.mp4")
    assert ids[5:] == ["dQw4w9WgXcQ-2", "dQw4w9WgXcQ-3", "abc123"]
    assert items[-1].uri == "https://example.com/clips/abc123.mp4?x=1"
    with pytest.raises(InputError, match="no videos found"):
        collect([str(tmp_path / "empty*.mp4")])


def test_a_manifest_saved_by_excel_with_a_byte_order_mark_is_read(corpus, tmp_path, caplog):
    """Excel's "CSV UTF-8" starts with a byte-order mark; the header is `path,video_id` all the same. The same row
    twice is processed twice, as documented, and a warning names it."""
    manifest = tmp_path / "excel.csv"
    manifest.write_bytes(b"\xef\xbb\xbf" + b"path,video_id\r\n" + b"videos/parking-lot-cars.mp4,clip\r\n" * 2)
    items = collect([str(manifest)])
    assert [i.video_id for i in items] == ["clip", "clip-2"]
    assert items[0].uri == str(tmp_path / "videos" / "parking-lot-cars.mp4")
    (warning,) = [r.getMessage() for r in caplog.records if "more than once" in r.getMessage()]
    assert "1 video(s) listed more than once" in warning and "parking-lot-cars.mp4" in warning


def test_batch_isolates_bad_videos_and_writes_corpus_tables(corpus, tmp_path):
    out = tmp_path / "out"
    result = run_cli("batch", str(corpus), str(tmp_path / "missing.mp4"), "-o", str(out), *YT8M, "-q")
    assert result.returncode == 1  # some videos failed
    assert "failed: corrupt, missing" in result.stderr and "Traceback" not in result.stderr
    videos = pd.read_parquet(out / "videos.parquet").set_index("video_id")
    assert videos["status"].to_dict() == {"corrupt": "error", "dQw4w9WgXcQ": "complete",
                                          "parking-lot-cars": "complete",
                                          "missing": "error"}
    assert "does not exist" in videos.loc["missing", "error"]
    assert videos.loc["dQw4w9WgXcQ", "frames_processed"] == 38  # 1 fps over 37.7 s
    assert videos.loc["dQw4w9WgXcQ", "fps"] == pytest.approx(24.013, abs=1e-3)
    assert videos.loc["dQw4w9WgXcQ", "n_car"] > 0 and "processing_s" in videos
    detections = pd.read_parquet(out / "detections")  # one call reads the dataset
    per_video = pd.read_parquet(out / "videos" / "dQw4w9WgXcQ" / "detections.parquet")
    assert (detections["video_id"] == "dQw4w9WgXcQ").sum() == len(per_video) == videos.loc["dQw4w9WgXcQ", "detections"]
    assert set(per_video["video"]) == {"dQw4w9WgXcQ"}  # tables carry the video id
    segments = pd.read_parquet(out / "segments")
    assert set(segments.columns) >= {"video_id", "segment", "start_s", "end_s", "class_name", "max_score",
                                     "mean_count", "frames_present"}
    assert (segments["start_s"] % 5 == 0).all()
    assert (out / "videos" / "parking-lot-cars" / MARKER).is_file()
    assert not (out / "videos" / "corrupt" / MARKER).exists()
    assert json.loads((out / "videos" / "corrupt" / "error.json").read_text())["status"] == "error"


def test_manifest_ids_cannot_escape_the_output_folder(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"video_id,path\n../../outside,{PARKING}\n/abs/olute,{PARKING}\n")
    out = tmp_path / "deep" / "out"
    table = run_batch([str(manifest)], out, PipelineConfig(sample_fps=1, max_frames=3, video=False, mot=False),
                      progress=False)
    assert sorted(table["video_id"]) == ["____outside", "_abs_olute"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep", "m.csv"]
    assert all((out / "videos" / vid / MARKER).is_file() for vid in table["video_id"])


def test_killed_batch_resumes_with_every_video_done_once(tmp_path):
    """SIGKILL in the middle of the corpus, then the same command: each video ends done exactly once."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(4):
        shutil.copy(SUBURBAN if i % 2 else PARKING, folder / f"clip{i}.mp4")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "vidpipe", "batch", str(folder), "-o", str(out), "--max-frames", "40", "-q"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (out / "videos" / "clip1" / MARKER).exists() and time.time() < deadline:  # two done, a third going
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = {p.parent.name: p.stat().st_mtime_ns for p in (out / "videos").glob(f"*/{MARKER}")}
    assert 2 <= len(done_before) < 4
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    markers = {p.parent.name: p.stat().st_mtime_ns for p in (out / "videos").glob(f"*/{MARKER}")}
    assert sorted(markers) == ["clip0", "clip1", "clip2", "clip3"]
    assert all(markers[v] == t for v, t in done_before.items())  # done before the kill: not done again
    assert not list(out.rglob("*.partial"))
    assert sorted(p.name for p in (out / "detections").iterdir()) == [
        f"part-clip{i}.parquet" for i in range(4)]  # one file per video
    detections = pd.read_parquet(out / "detections")
    for i in range(4):
        own = pd.read_parquet(out / "videos" / f"clip{i}" / "detections.parquet")
        assert (detections["video_id"] == f"clip{i}").sum() == len(own)
        assert len(pd.read_parquet(out / "videos" / f"clip{i}" / "frames.parquet")) == 40
    assert set(pd.read_parquet(out / "videos.parquet")["status"]) == {"complete"}


def test_two_workers_and_ray_give_the_same_tables_as_one(tmp_path):
    inputs = [str(PARKING), str(SUBURBAN)]
    config = PipelineConfig(start=3.0, max_frames=40, video=False)
    tables = {}
    for name, options in (("one", {"workers": 1}), ("two", {"workers": 2})):
        run_batch(inputs, tmp_path / name, config, progress=False, **options)
        tables[name] = _sorted(pd.read_parquet(tmp_path / name / "detections"))
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run_batch(inputs, tmp_path / "ray", config, executor="ray", workers=2, progress=False)
    finally:
        ray.shutdown()
    tables["ray"] = _sorted(pd.read_parquet(tmp_path / "ray" / "detections"))
    assert len(tables["one"]) > 50
    pd.testing.assert_frame_equal(tables["one"], tables["two"])
    pd.testing.assert_frame_equal(tables["one"], tables["ray"])
    for name in ("two", "ray"):
        for vid in ("parking-lot-cars", "suburban-traffic"):
            tracks = (tmp_path / name / "videos" / vid / "tracks.txt").read_text()
            assert tracks == (tmp_path / "one" / "videos" / vid / "tracks.txt").read_text()


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    return table.sort_values(["video_id", "frame", "track_id", "x1"]).reset_index(drop=True)


def test_force_redoes_done_videos(tmp_path):
    out = tmp_path / "out"
    config = PipelineConfig(sample_fps=1, max_frames=2, video=False, mot=False)
    run_batch([str(PARKING)], out, config, progress=False)
    first = (out / "videos" / "parking-lot-cars" / MARKER).stat().st_mtime_ns
    run_batch([str(PARKING)], out, config, progress=False)
    assert (out / "videos" / "parking-lot-cars" / MARKER).stat().st_mtime_ns == first
    run_batch([str(PARKING)], out, config, force=True, progress=False)
    assert (out / "videos" / "parking-lot-cars" / MARKER).stat().st_mtime_ns != first


def test_segment_table_on_a_known_detection_sequence():
    """1 fps for 12 s: a car in frames at 0, 1, 2 s (scores .5, .9, .7; two cars at 1 s), a person at 6 s."""
    frames = pd.DataFrame({"frame": np.arange(12) * 30, "time_s": np.arange(12, dtype=float)})
    detections = pd.DataFrame({
        "frame": [0, 30, 30, 60, 180],
        "time_s": [0.0, 1.0, 1.0, 2.0, 6.0],
        "class_name": ["car", "car", "car", "car", "person"],
        "score": [0.5, 0.9, 0.6, 0.7, 0.8],
    })
    table = segment_table("vid", detections, frames, seconds=5)
    assert table.to_dict("records") == [
        {"video_id": "vid", "segment": 0, "start_s": 0.0, "end_s": 5.0, "class_name": "car",
         "max_score": pytest.approx(0.9), "mean_count": pytest.approx(4 / 5), "frames_present": 3},
        {"video_id": "vid", "segment": 1, "start_s": 5.0, "end_s": 10.0, "class_name": "person",
         "max_score": pytest.approx(0.8), "mean_count": pytest.approx(1 / 5), "frames_present": 1},
    ]
    empty = segment_table("vid", detections.iloc[:0], frames)
    assert list(empty.columns) == list(table.columns) and empty.dtypes.equals(table.dtypes)


def test_corpus_tables_read_the_same_in_pandas_polars_and_duckdb(tmp_path):
    """Ids made of digits stay text, every video's tables have the same columns whatever it shows, and
    the ids a corpus uses for its own files (`detections`, `videos.parquet`) are ordinary video ids."""
    polars = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    manifest = tmp_path / "list.csv"
    manifest.write_text(f"video_id,path\n0123,{PARKING}\n007,{SUBURBAN}\ndetections,{SUBURBAN}\n"
                        f"videos.parquet,{PARKING}\nsegments,{PARKING}\n")
    out = tmp_path / "out"
    # from 16 s, where a car on the parking lot scores over 0.6 at every precision (YOLOv8n takes it for a
    # cell phone), every track an object: 12 frames are too few for the default rule
    config = PipelineConfig(start=16.0, max_frames=12, video=False, mot=False, lines=["road=0,0.55,1,0.55"],
                            zones=["near=0.3,0.5,0.9,0.5,0.9,1,0.3,1"], confirm_frames=1, confirm_score=0.0)
    table = run_batch([str(manifest)], out, config, progress=False)
    assert table["status"].tolist() == ["complete"] * 5 and (out / "videos.parquet").is_file()
    # a file being written inside a dataset (as a crashed or running batch leaves it) is invisible to readers
    (out / "detections" / ".part-0999.parquet.partial").write_bytes(b"half a parquet file")
    for dataset in ("detections", "frames", "tracks", "events", "visits", "segments"):
        files = sorted(str(p) for p in (out / dataset).glob("*.parquet"))
        assert len(files) == 5, dataset
        with_pandas = pd.read_parquet(out / dataset)
        with_polars = polars.read_parquet(str(out / dataset / "*.parquet")).to_pandas()
        with_duckdb = duckdb.sql(f"select * from read_parquet('{out / dataset}/*.parquet')").df()
        for other in (with_polars, with_duckdb):
            assert list(other.columns) == list(with_pandas.columns), dataset
            assert sorted(other["video_id"].tolist()) == sorted(with_pandas["video_id"].astype(str).tolist())
        ids = {"0123", "007", "detections", "videos.parquet", "segments"}
        sparse = dataset in ("events", "visits")  # a video with no crossing or visit has no rows
        assert set(with_pandas["video_id"]) <= ids if sparse else set(with_pandas["video_id"]) == ids
        assert all(isinstance(v, str) for v in [*with_polars["video_id"], *with_duckdb["video_id"]])
    frames = pd.read_parquet(out / "frames")
    assert {"n_car", "n_person", "n_toothbrush", "near_n"} <= set(frames.columns)  # every class, seen or not
    videos = pd.read_parquet(out / "videos.parquet")
    assert videos["video_id"].tolist() == ["0123", "007", "detections", "videos.parquet", "segments"]
    assert {"n_car", "n_toothbrush"} <= set(videos.columns)
    tracks = pd.read_parquet(out / "tracks")
    # "which clips have a car for at least 0.3 s" is one line on the tracks table:
    clips = set(tracks.loc[(tracks.class_name == "car") & (tracks.duration_s >= 0.3), "video_id"])
    assert {"007", "detections"} <= clips


def test_tracks_table_summarises_every_track(tmp_path):
    """tracks.parquet: one row per track id of the detection table, its numbers recomputed from the rows;
    under a rule of 30 detections the tracks that start late in 60 frames stay unconfirmed."""
    preset = tmp_path / "rule.yaml"
    preset.write_text("confirm_frames: 30\n")
    result = run_cli("run", str(SUBURBAN), "-o", str(tmp_path), "--max-frames", "60", "--no-video", "-q",
                     "-p", str(preset))
    assert result.returncode == 0, result.stderr
    detections = pd.read_parquet(tmp_path / "detections.parquet")
    tracks = pd.read_parquet(tmp_path / "tracks.parquet").set_index("track_id")
    assert sorted(tracks.index) == sorted(detections["track_id"].unique())
    summary = json.loads((tmp_path / "summary.json").read_text())
    objects = tracks[tracks["confirmed"]]  # the summary counts objects: confirmed tracks only
    assert objects["class_name"].value_counts().to_dict() == summary["tracks_per_class"]
    assert summary["unconfirmed_tracks"] == (~tracks["confirmed"]).sum() > 0
    assert (objects["frames_detected"] >= 30).all()
    for track, rows in detections.groupby("track_id"):
        row = tracks.loc[track]
        assert (row.first_frame, row.last_frame) == (rows.frame.min(), rows.frame.max())
        assert row.duration_s == pytest.approx(rows.time_s.max() - rows.time_s.min())
        assert row.frames_detected == len(rows) and row.max_score == pytest.approx(rows.score.max())
        assert row.class_name == rows.track_class.iloc[-1]  # the vote as it stood at the track's end
        centres = np.column_stack([(rows.x1 + rows.x2) / 2, (rows.y1 + rows.y2) / 2])
        assert row.path_px == pytest.approx(np.hypot(*np.diff(centres, axis=0).T).sum(), rel=1e-4)


def test_a_cut_short_video_is_partial_and_the_corpus_tables_say_what_was_seen(tmp_path, browser):
    """A clip cut short (its header promises 377 frames) is `partial`, not `complete`, with source_frames_lost
    and source_frames_expected; the report warns about it; `--partial-is-error` makes it a failure that is retried.
    The yt8m tables: every class's presence per frame (long, sparse), and seconds present per class."""
    cut = tmp_path / "videos" / "cut.mp4"
    cut.parent.mkdir()
    cut.write_bytes(PARKING.read_bytes()[:1_400_000])  # moov is at the front, media data is cut
    shutil.copy(SUBURBAN, tmp_path / "videos" / "whole.mp4")
    out = tmp_path / "out"
    result = run_cli("batch", str(tmp_path / "videos"), "-o", f"{out}/", *YT8M, "-q")
    assert result.returncode == 0, result.stderr
    assert f"{out}/videos.parquet" in result.stdout and "//" not in result.stdout and "1 partial" in result.stdout
    videos = pd.read_parquet(out / "videos.parquet").set_index("video_id")
    assert videos.loc["cut", "status"] == "partial" and videos.loc["whole", "status"] == "complete"
    assert videos.loc["cut", "source_frames_expected"] == 377 and 100 < videos.loc["cut", "source_frames_lost"] < 377
    for column in ("width", "height", "frames_processed", "source_frames_lost", "source_size", "source_mtime_ns"):
        assert pd.api.types.is_integer_dtype(videos[column]), column
    presence = pd.read_parquet(out / "presence")
    assert list(presence.columns) == ["video_id", "frame", "time_s", "target_s", "class_name", "count", "p_any",
                                      "max_score"]  # target_s: the whole second each 1 fps row stands for
    cars = presence[(presence["video_id"] == "whole") & (presence["class_name"] == "car")]
    detections = pd.read_parquet(out / "detections")
    whole_cars = detections[(detections["video_id"] == "whole") & (detections["class_name"] == "car")]
    assert cars["count"].sum() == len(whole_cars) and ((cars["p_any"] > 0) & (cars["p_any"] <= 1)).all()
    frames = pd.read_parquet(out / "frames")
    seen = frames[(frames["video_id"] == "whole") & (frames["n_car"] > 0)]
    assert videos.loc["whole", "s_car"] == pytest.approx(len(seen), abs=1.0)  # 1 fps: a second per frame
    browser.get((out / "report.html").as_uri())
    assert "1 video(s) are partial" in browser.find_element("id", "partial-banner").text
    assert "car" in browser.find_element("id", "longest").text  # no tracks at 1 fps: seconds present
    _run_the_docs_queries(out)
    strict = run_cli("batch", str(tmp_path / "videos"), "-o", str(out), *YT8M, "--partial-is-error", "-q")
    assert strict.returncode == 1 and "failed: cut" in strict.stderr
    videos = pd.read_parquet(out / "videos.parquet").set_index("video_id")
    assert videos.loc["cut", "status"] == "error" and videos.loc["cut", "error"].startswith("partial: ")


@pytest.fixture(scope="module")
def mixed_corpus(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A --pipeline yt8m corpus of a whole clip, one cut short and a corrupt file, run with its progress bar."""
    root = tmp_path_factory.mktemp("mixed")
    (root / "videos").mkdir()
    shutil.copy(SUBURBAN, root / "videos" / "whole.mp4")
    (root / "videos" / "cut.mp4").write_bytes(PARKING.read_bytes()[:1_400_000])  # moov at the front, media cut
    (root / "videos" / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(5000))
    result = run_cli("batch", str(root / "videos"), "-o", str(root / "out"), *YT8M)
    assert result.returncode == 1 and "failed: corrupt" in result.stderr, result.stderr
    return root / "out", result


def test_frames_decoded_is_in_the_summary_and_the_videos_table(mixed_corpus, tmp_path):
    """frames_decoded: the pictures the decoder gave, beside frames_processed, in summary.json and videos.parquet;
    decoding every frame, it is every frame PyAV finds in the file."""
    out, _ = mixed_corpus
    videos = pd.read_parquet(out / "videos.parquet").set_index("video_id")
    summary = json.loads((out / "videos" / "whole" / "summary.json").read_text())
    assert videos.loc["whole", "frames_decoded"] == summary["frames_decoded"]
    assert summary["frames_processed"] <= summary["frames_decoded"] < len(frame_times(SUBURBAN))  # sampled decoding
    env = {**os.environ, "VIDPIPE_DECODE_EVERY_FRAME": "1"}
    every = subprocess.run([sys.executable, "-m", "vidpipe", "run", str(SUBURBAN), "-o", str(tmp_path), *YT8M, "-q"],
                           capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert every.returncode == 0, every.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["frames_decoded"] == len(frame_times(SUBURBAN))


def test_a_sampled_run_writes_the_presence_table_a_corpus_writes(mixed_corpus, tmp_path):
    """`vidpipe run --pipeline yt8m` writes presence.parquet, with the corpus's columns and every class seen (not
    only person, as frames.parquet's p_any_ columns); a run that keeps every frame writes none."""
    out, _ = mixed_corpus
    result = run_cli("run", str(SUBURBAN), "-o", str(tmp_path / "sampled"), *YT8M, "-q")
    assert result.returncode == 0, result.stderr
    presence = pd.read_parquet(tmp_path / "sampled" / "presence.parquet")
    assert list(presence.columns) == list(pd.read_parquet(out / "presence").columns)
    detections = pd.read_parquet(tmp_path / "sampled" / "detections.parquet")
    assert set(presence["class_name"]) == set(detections["class_name"]) and len(set(detections["class_name"])) > 1
    for (frame, name), group in detections.groupby(["frame", "class_name"]):
        row = presence[(presence["frame"] == frame) & (presence["class_name"] == name)].iloc[0]
        assert row["count"] == len(group) and row["time_s"] == group["time_s"].iloc[0]
        assert row["p_any"] == pytest.approx(1 - np.prod(1 - group["score"].to_numpy(np.float64)), rel=1e-5)
    assert len(presence) == detections.groupby(["frame", "class_name"]).ngroups
    assert set(presence["video_id"]) == {"suburban-traffic"}
    every = run_cli("run", str(SUBURBAN), "-o", str(tmp_path / "every"), "--max-frames", "5", "--no-video", "-q")
    assert every.returncode == 0, every.stderr
    assert not list((tmp_path / "every").glob("presence.*"))


def test_seconds_present_stop_at_the_end_of_the_video(mixed_corpus, browser):
    """At 1 fps a 37.7 s clip has 38 frames: a class seen in all of them was seen for 37.7 s, not 38, in
    videos.parquet and in the corpus report."""
    out, _ = mixed_corpus
    videos = pd.read_parquet(out / "videos.parquet").set_index("video_id")
    present = videos[[c for c in videos.columns if c.startswith("s_")]]
    assert (present.max(axis=1) <= videos["duration_s"].fillna(0) + 1e-9).all()
    frames = pd.read_parquet(out / "frames")
    whole = frames[frames["video_id"] == "whole"].sort_values("time_s")
    assert whole["n_car"].gt(0).all()  # a car in every frame: present the whole clip, from the first frame on
    assert videos.loc["whole", "s_car"] == pytest.approx(videos.loc["whole", "duration_s"] - whole["time_s"].min(),
                                                          abs=1e-3)
    browser.get((out / "report.html").as_uri())
    shown = [float(s) for s in re.findall(r"whole \(([\d.]+) s\)", browser.find_element("id", "longest").text)]
    assert shown and max(shown) <= round(videos.loc["whole", "duration_s"], 1)  # as the report rounds


def test_frame_counts_name_their_unit_in_the_videos_table_and_the_summary(mixed_corpus, browser):
    """Sampled frames are frames_processed; the input's own frames are source_frames_*: a cut clip reads "14
    frames processed" beside "207 of 377 source frames lost", and each number is the summary's."""
    out, _ = mixed_corpus
    videos = pd.read_parquet(out / "videos.parquet").set_index("video_id")
    assert not {"frames", "frames_lost", "frames_expected"} & set(videos.columns)
    for video in ("whole", "cut"):
        summary = json.loads((out / "videos" / video / "summary.json").read_text())
        assert "frames_lost" not in summary and "frames_unread" not in summary
        assert videos.loc[video, "frames_processed"] == summary["frames_processed"]
        assert videos.loc[video, "source_frames_lost"] == summary["source_frames_lost"]
        assert (pd.read_parquet(out / "frames")["video_id"] == video).sum() == summary["frames_processed"]
    assert videos.loc["cut", "source_frames_expected"] == len(frame_times(PARKING))  # the header's promise
    assert videos.loc["whole", "source_frames_expected"] == len(frame_times(SUBURBAN))
    assert 0 < videos.loc["cut", "source_frames_lost"] < videos.loc["cut", "source_frames_expected"]
    browser.get((out / "report.html").as_uri())
    heads = [h.text for h in browser.find_elements("css selector", "#videos th")]
    assert "frames processed" in heads and "source frames lost" in heads


def test_a_partial_video_has_one_status_and_its_report_is_linked(mixed_corpus, browser):
    """A cut video is `partial` in its own summary.json and in videos.parquet alike; the corpus report links every
    per-video report that exists, the partial video's included, and the link opens it."""
    out, _ = mixed_corpus
    videos = pd.read_parquet(out / "videos.parquet").set_index("video_id")
    for video in ("whole", "cut"):
        summary = json.loads((out / "videos" / video / "summary.json").read_text())
        assert videos.loc[video, "status"] == summary["status"]
    assert videos.loc["cut", "status"] == "partial" and videos.loc["corrupt", "status"] == "error"
    browser.get((out / "report.html").as_uri())
    links = {a.text: a.get_attribute("href") for a in browser.find_elements("css selector", "#videos a")}
    assert set(links) == {p.parent.name for p in (out / "videos").glob("*/report.html")} == {"whole", "cut"}
    browser.get(links["cut"])
    assert "partial" in browser.find_element("id", "status-banner").text


def test_the_batch_bar_ends_at_every_video_handled(mixed_corpus):
    """A cut clip gives fewer frames than its header promises and a corrupt one none: the bar counts videos, so
    it still ends at 3/3, 100%."""
    _, result = mixed_corpus
    last = [part for part in re.split(r"[\r\n]", result.stderr) if part.startswith("corpus:")][-1]
    assert re.match(r"corpus: 100%\|[^|]*\| 3/3 ", last), last


def test_a_corpus_on_a_real_ray_cluster_by_auto_and_by_client_address(tmp_path):
    """A Ray head started as a user starts one (`ray start --head`, loopback ports, Ray's default token
    authentication), reached with `--address auto` and with `--address ray://127.0.0.1:PORT`: both do the
    corpus, the bar counts frames, and Ray's client noise stays out of the terminal. A client session the
    cluster fails to start is asked for again."""
    import socket
    import subprocess
    import sys

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    gcs, client = free_port(), free_port()
    started = subprocess.run([*ray_cli, "start", "--head", f"--port={gcs}", f"--ray-client-server-port={client}",
                              "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--num-cpus=2",
                              "--disable-usage-stats"], capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        manifest = tmp_path / "list.csv"
        manifest.write_text(f"video_id,path\nr1,{PARKING}\nr2,{SUBURBAN}\n")
        for name, address in (("auto", "auto"), ("client", f"ray://127.0.0.1:{client}")):
            out = tmp_path / name
            command = ["batch", str(manifest), "-o", str(out), *YT8M, "--max-frames", "5", "--executor", "ray",
                       "--address", address]
            result = run_cli(*command, timeout=300)
            assert result.returncode == 0, (address, result.stdout, result.stderr[-6000:])
            assert "2 complete" in result.stdout and "SIGTERM handler" not in result.stderr
            full = re.findall(r"\| *([1-9]\d*)/\1 \[", result.stderr)  # the bar's frames reach its total
            assert full, result.stderr[-2000:]  # counted as the actors finish videos
            assert pd.read_parquet(out / "videos.parquet")["status"].tolist() == ["complete", "complete"]
        # A session the cluster fails to start is asked for again, from the same process, and the next one works.
        # Ray's proxier really fails the first one here: it asks for a runtime env the cluster cannot make (in the
        # wild, the proxier loses the server process it starts for the client).
        retried = subprocess.run([sys.executable, "-c", _FIRST_SESSION_FAILS, f"ray://127.0.0.1:{client}"],
                                 capture_output=True, text=True, timeout=300)
        assert retried.returncode == 0, retried.stderr[-3000:]
        assert retried.stdout.split() == ["2", "42"], retried.stdout  # two sessions asked for; a task ran
        assert "failed to start a session for this client" in retried.stderr and "trying again" in retried.stderr
    finally:
        subprocess.run([*ray_cli, "stop", "--force"], capture_output=True, timeout=120)


_FIRST_SESSION_FAILS = """
import sys
from vidpipe import corpus
corpus._send_ray_token()  # as vidpipe's Ray executor does for a ray:// address
import ray
calls = []
class FirstSessionFails:
    def init(self, **kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            kwargs = {**kwargs, "runtime_env": {"conda": "no-such-env"}}  # the cluster has no conda
        return ray.init(**kwargs)
corpus._ray_init(FirstSessionFails(), sys.argv[1], client=True)
print(len(calls), ray.get(ray.remote(lambda: 41 + 1).remote()))
ray.shutdown()
"""


def test_a_ray_cluster_that_never_starts_a_client_session_fails_after_three_tries_in_one_line(monkeypatch):
    """The real cluster above fails one session and gives the next; one that fails every session (injected here
    as Ray's client raises it, word for word) gets three tries and one line with Ray's reason, not its traceback."""
    from vidpipe import corpus
    from vidpipe.errors import VidpipeError

    monkeypatch.setattr(corpus, "RAY_SESSION_PAUSE_S", 0.0)
    calls = []

    class NeverStarts:
        def init(self, **kwargs) -> None:
            calls.append(kwargs)
            raise ConnectionAbortedError(
                "Initialization failure from server:\nTraceback (most recent call last):\n  File \"proxier.py\", "
                "line 770, in Datapath\nRuntimeError: Starting Ray client server failed. See "
                "ray_client_server_23000.err for detailed logs.\n")

    with pytest.raises(VidpipeError) as error:
        corpus._ray_init(NeverStarts(), "ray://127.0.0.1:10001", client=True)
    assert len(calls) == corpus.RAY_SESSION_TRIES == 3
    message = str(error.value)
    assert "\n" not in message and "failed to start a session for this client 3 times" in message
    assert message.endswith("RuntimeError: Starting Ray client server failed. See ray_client_server_23000.err for "
                            "detailed logs.")


def _run_the_docs_queries(out: Path) -> None:
    """The corpus queries of docs/corpora.md and of the README's corpus example, as written (with this
    corpus's folder for OUT), on a --pipeline yt8m corpus."""
    import re

    import duckdb
    import polars

    from conftest import REPO

    page = (REPO / "docs" / "corpora.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", page, re.S)
    assert "OUT/presence" in code and "s_dog" in code
    exec(code.replace("OUT/", f"{out}/"), {"pandas": pd, "polars": polars, "duckdb": duckdb})
    (readme,) = [code for code in re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
                 if "corpus/videos.parquet" in code]
    exec(readme.replace("corpus/", f"{out}/"), {})


def test_a_keyframes_corpus_says_which_second_each_frame_stands_for(tmp_path):
    """--sample-mode keyframes in a corpus: the frame and detection datasets carry target_s, one schema for
    every video, and the summary gives the rate really got."""
    out = tmp_path / "out"
    result = run_cli("batch", str(SUBURBAN), str(PARKING), "-o", str(out), *YT8M, "--sample-mode", "keyframes",
                     "-q")
    assert result.returncode == 0, result.stderr
    frames, detections = pd.read_parquet(out / "frames"), pd.read_parquet(out / "detections")
    assert "target_s" in frames and "target_s" in detections and len(frames) > 2
    assert ((frames["target_s"] <= frames["time_s"]) & (frames["time_s"] < frames["target_s"] + 1)).all()
    summary = json.loads((out / "videos" / "suburban-traffic" / "summary.json").read_text())
    assert summary["sampling"]["sample_mode"] == "keyframes"
    assert 0 < summary["sampling"]["effective_fps"] < 1  # fewer keyframes than seconds

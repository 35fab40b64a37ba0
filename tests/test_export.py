"""`vidpipe export`: each format read back by its tools' own readers (pycocotools, ultralytics, Datumaro,
label-studio-sdk), the pictures exactly the frames the detector saw, and the refusals."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import PARKING, REPO, SUBURBAN, run_cli
from vidpipe.sources import Sampling, open_source

READERS = Path(os.environ.get("VIDPIPE_READERS_PYTHON", REPO / ".ci" / "readers" / "bin" / "python"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Both bundled clips at 1 fps, tracked: the YouTube-8M way, and few frames to decode again."""
    out = tmp_path_factory.mktemp("export") / "corpus"
    result = run_cli("batch", str(PARKING), str(SUBURBAN), "-o", str(out), "--sample-fps", "1", "--no-video",
                     "--no-report", "-q")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def road(tmp_path_factory) -> Path:
    """The first 12 s of the quickstart clip, every frame tracked: cars found, lost a frame or two, found again."""
    out = tmp_path_factory.mktemp("export") / "road"
    result = run_cli("run", str(SUBURBAN), "-o", str(out), "--max-frames", "290", "--no-video", "--no-report", "-q")
    assert result.returncode == 0, result.stderr
    return out


def export(source: Path, dest: Path, to: str, *options: str) -> subprocess.CompletedProcess:
    result = run_cli("export", str(source), "--to", to, "--dest", str(dest), "-q", *options)
    assert result.returncode == 0, result.stderr
    return result


def kept(run: Path, min_score: float = 0.0) -> pd.DataFrame:
    rows = pd.read_parquet(run / "detections.parquet")
    return rows[rows["detected"] & (rows["score"] >= min_score)]


def test_coco_loads_in_pycocotools_scores_ap_1_against_itself_and_holds_every_box(corpus, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    run = corpus / "videos" / "suburban-traffic"
    export(run, tmp_path / "coco", "coco", "--min-score", "0.3")
    truth = COCO(str(tmp_path / "coco" / "annotations.json"))
    assert len(truth.getAnnIds()) == len(kept(run, 0.3)) > 10
    assert len(truth.getImgIds()) == len(pd.read_parquet(run / "frames.parquet")) == 38  # every processed frame
    assert truth.loadCats(truth.getCatIds())[2]["name"] == "car"  # the model's 80 classes, ids from 1
    results = truth.loadRes([{**a, "score": a["score"]} for a in truth.dataset["annotations"]])
    evaluation = COCOeval(truth, results, "bbox")
    evaluation.evaluate(), evaluation.accumulate(), evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)  # AP50-95 of the export against itself
    tracks = {a["attributes"]["track_id"] for a in truth.dataset["annotations"]}
    assert tracks <= set(kept(run, 0.3)["track_id"]) and len(tracks) > 1


def test_exported_pictures_are_exactly_the_frames_sampled_at_1_fps(corpus, tmp_path):
    run = corpus / "videos" / "suburban-traffic"  # tracked cars at 1 fps (the parking clip's pass too quickly)
    export(run, tmp_path / "coco", "coco")
    document = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    sampled = {f.index: f.image for f in open_source(SUBURBAN, Sampling(sample_fps=1))}
    assert sorted(image["frame"] for image in document["images"]) == sorted(sampled)
    for image in document["images"]:
        written = cv2.imread(str(tmp_path / "coco" / image["file_name"]))
        fresh = cv2.imdecode(cv2.imencode(".jpg", sampled[image["frame"]], [cv2.IMWRITE_JPEG_QUALITY, 95])[1], 1)
        assert np.array_equal(written, fresh), image["file_name"]  # the same pixels, the same JPEG encoding


def test_yolo_passes_ultralytics_dataset_check_and_splits_whole_videos(corpus, tmp_path):
    from ultralytics.data.utils import check_det_dataset

    export(corpus, tmp_path / "yolo", "yolo", "--split", "train=0.5,val=0.5")
    data = check_det_dataset(str(tmp_path / "yolo" / "data.yaml"))
    assert data["nc"] == 80 and data["names"][2] == "car"
    videos = {split: {p.parent.name for p in (tmp_path / "yolo" / "images" / split).rglob("*.jpg")}
              for split in ("train", "val")}
    assert videos["train"] and videos["val"] and not videos["train"] & videos["val"]  # one video, one split
    split = "train" if "suburban-traffic" in videos["train"] else "val"
    rows = kept(corpus / "videos" / "suburban-traffic")
    row = rows.iloc[len(rows) // 2]
    label = tmp_path / "yolo" / "labels" / split / "suburban-traffic" / f"{row['frame']:06d}.txt"
    boxes = np.loadtxt(label, ndmin=2)
    width, height = 640, 352
    xyxy = np.column_stack([(boxes[:, 1] - boxes[:, 3] / 2) * width, (boxes[:, 2] - boxes[:, 4] / 2) * height,
                            (boxes[:, 1] + boxes[:, 3] / 2) * width, (boxes[:, 2] + boxes[:, 4] / 2) * height])
    error = np.abs(xyxy - row[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)).max(axis=1).min()
    assert error < 1.0 and len(boxes) == (rows["frame"] == row["frame"]).sum()


def read_with(script: str, *args: str) -> dict:
    """What a tool's own reader found, from `tests/readers/<script>` run in the readers' venv."""
    if not READERS.exists():
        pytest.skip(f"needs Datumaro and label-studio-sdk in their own venv at {READERS} (.ci/run makes it; "
                    "or set VIDPIPE_READERS_PYTHON)")
    result = subprocess.run([str(READERS), str(REPO / "tests" / "readers" / script), *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def datumaro(folder: Path, fmt: str) -> dict:
    return read_with("datumaro_count.py", str(folder), fmt)


def test_cvat_for_video_and_mot_import_in_datumaro_with_every_track_and_box(corpus, tmp_path):
    run = corpus / "videos" / "suburban-traffic"
    rows = kept(run)
    export(run, tmp_path / "cvat", "cvat-video")
    export(run, tmp_path / "mot", "mot")
    tracks = rows["track_id"].nunique() - (rows["track_id"] < 0).any() + (rows["track_id"] < 0).sum()
    cvat = datumaro(tmp_path / "cvat" / "suburban-traffic", "cvat")
    mot = datumaro(tmp_path / "mot" / "suburban-traffic", "mot_seq")
    assert (cvat["tracks"], cvat["boxes"] - cvat["outside"]) == (mot["tracks"], mot["boxes"]) == (tracks, len(rows))
    assert cvat["outside"] > 0 and set(cvat["labels"]) == set(mot["labels"]) >= {"car"}


def test_an_outside_box_is_on_the_first_processed_frame_a_track_was_lost(corpus, tmp_path):
    import xml.etree.ElementTree as ET

    """A track seen on processed frames 3 and 4 of a run, and not on 5, is `outside` from frame 5 on."""
    run = corpus / "videos" / "suburban-traffic"
    export(run, tmp_path / "cvat", "cvat-video")
    processed = sorted(pd.read_parquet(run / "frames.parquet")["frame"])
    outside = 0
    for track in ET.parse(tmp_path / "cvat" / "suburban-traffic" / "annotations.xml").iter("track"):
        boxes = [(int(b.get("frame")), b.get("outside") == "1") for b in track.iter("box")]
        seen = {frame for frame, lost in boxes if not lost}
        for (frame, lost), (before, _) in zip(boxes[1:], boxes):
            if lost:
                outside += 1
                assert processed[processed.index(before) + 1] == frame and frame not in seen
        assert boxes[-1][1] or boxes[-1][0] == processed[-1]  # every track ends lost, or at the run's end
    assert outside > 0


def label_studio(run: Path, dest: Path, *options: str, tasks: str = "tasks.json") -> tuple[list, dict]:
    """Export to Label Studio; the tasks as written, and what label-studio-sdk found in them."""
    export(run, dest, "label-studio", *options)
    return json.loads((dest / tasks).read_text()), read_with("label_studio_check.py", str(dest), tasks)


def results(task: dict) -> dict[int, dict]:
    """A task's tracks by their vidpipe number (`track-<n>`)."""
    return {int(r["id"].removeprefix("track-")): r for r in task["predictions"][0]["result"]}


def test_label_studio_tasks_pass_the_sdks_validator_with_a_result_per_track_and_its_boxes_within_1_px(road,
                                                                                                        tmp_path):
    run = road
    [task], found = label_studio(run, tmp_path / "ls", "--min-score", "0.3", "--classes", "car")
    assert found["tasks"][0]["data_valid"] and found["tasks"][0]["errors"] == []
    rows = kept(run, 0.3)
    voted = pd.read_parquet(run / "tracks.parquet").set_index("track_id")["class_name"]  # a track's class
    rows = rows[rows["track_id"].map(voted).fillna(rows["class_name"]) == "car"]
    tracked = rows[rows["track_id"] >= 0]
    by_number = results(task)
    assert len(by_number) == tracked["track_id"].nunique() + (rows["track_id"] < 0).sum() > 5
    assert found["labels"] == ["car"] and {r["value"]["labels"][0] for r in by_number.values()} == {"car"}
    width, height = 640, 352
    for track, boxes in tracked.groupby("track_id"):
        sequence = by_number[track]["value"]["sequence"]
        assert [k["frame"] - 1 for k in sequence] == boxes["frame"].tolist()  # source frames, from 1
        read = np.array([[k["x"] * width, k["y"] * height, (k["x"] + k["width"]) * width,
                          (k["y"] + k["height"]) * height] for k in sequence]) / 100
        assert np.abs(read - boxes[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)).max() < 1.0


def test_a_track_lost_and_found_again_is_disabled_where_lost_so_label_studio_shows_it_only_where_seen(road,
                                                                                                      tmp_path):
    """Label Studio draws a box from an enabled keyframe up to the next keyframe, and from a disabled one on its
    own frame only: a track seen on processed frames 3 and 4, not 5, then on 6 is drawn on 3 to 4 and on 6."""
    run = road
    [task], found = label_studio(run, tmp_path / "ls")
    processed = sorted(pd.read_parquet(run / "frames.parquet")["frame"] + 1)  # as Label Studio numbers them
    found_again = 0
    for number, result in results(task).items():
        sequence = result["value"]["sequence"]
        drawn = set(found["tasks"][0]["frames"][result["id"]])  # as label-studio-sdk's tools expand them
        for before, after in zip(sequence, sequence[1:]):
            missed = processed.index(after["frame"]) - processed.index(before["frame"]) > 1  # lost between
            between = set(range(before["frame"] + 1, after["frame"]))
            assert before["enabled"] is not missed and drawn & between == (set() if missed else between), number
            found_again += missed
        assert max(drawn) == sequence[-1]["frame"]  # and not after its last box
    assert found_again > 0


def test_label_studio_numbers_a_sampled_runs_source_frames_from_1_and_names_each_video(corpus, tmp_path):
    tasks, found = label_studio(corpus, tmp_path / "ls", "--absolute-paths")
    assert [t["data_valid"] for t in found["tasks"]] == [True, True] and not any(t["errors"] for t in found["tasks"])
    task = next(t for t in tasks if t["data"]["video_id"] == "suburban-traffic")  # (no box in the other at 1 fps)
    assert task["data"]["video"] == str(SUBURBAN.resolve()) and task["data"]["fps"] == pytest.approx(24.013, abs=1e-3)
    sampled = [f.index for f in open_source(SUBURBAN, Sampling(sample_fps=1))]  # 0, 24, 48, ...
    keyframes = [k for r in results(task).values() for k in r["value"]["sequence"]]
    assert {k["frame"] - 1 for k in keyframes} <= set(sampled) and len({k["frame"] for k in keyframes}) > 30
    assert all(k["time"] == pytest.approx(k["frame"] / task["data"]["fps"], abs=1e-3) for k in keyframes)
    assert {r["value"]["framesCount"] for r in results(task).values()} == {905}
    relative = tmp_path / "relative"
    export(corpus, relative, "label-studio", "--split", "train=0.5,val=0.5")
    videos = [json.loads((relative / f"tasks_{split}.json").read_text())[0]["data"]["video"]
              for split in ("train", "val")]
    assert {(relative / video).resolve() for video in videos} == {PARKING.resolve(), SUBURBAN.resolve()}
    assert not any(Path(video).is_absolute() for video in videos)


def test_label_studio_refuses_a_run_on_pictures_in_one_line(tmp_path):
    picture = tmp_path / "car.jpg"
    reader = open_source(SUBURBAN, Sampling())  # cars
    cv2.imwrite(str(picture), next(iter(reader)).image)
    reader.close()
    result = run_cli("run", str(picture), "-o", str(tmp_path / "run"), "--no-video", "--no-report", "-q")
    assert result.returncode == 0, result.stderr
    result = run_cli("export", str(tmp_path / "run"), "--to", "label-studio", "--dest", str(tmp_path / "ls"), "-q")
    assert result.returncode == 2 and "need a video file" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "ls").exists()


@pytest.mark.parametrize("case", ["changed", "moved", "unknown format", "empty"])
def test_an_export_that_cannot_be_made_is_one_line_and_exit_2(tmp_path, case):
    clip = tmp_path / "clip.mp4"
    shutil.copy(PARKING, clip)
    run = tmp_path / "run"
    window = ["--start", "4", "--end", "6"] if case != "empty" else ["--max-frames", "3"]  # a car, or nothing
    result = run_cli("run", str(clip), "-o", str(run), "--no-video", "--no-report", "-q", *window)
    assert result.returncode == 0, result.stderr
    to = "coco"
    if case == "changed":
        with clip.open("ab") as file:
            file.write(b"\0")
    elif case == "moved":
        clip.rename(tmp_path / "elsewhere.mp4")
    elif case == "unknown format":
        to = "pascal"
    result = run_cli("export", str(run), "--to", to, "--dest", str(tmp_path / "out"), "-q")
    message = {"changed": "has changed since the run", "moved": "is not there any more",
               "unknown format": "'pascal' is not one of", "empty": "nothing to export: no boxes"}[case]
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_confirmed_only_keeps_the_boxes_of_objects_and_needs_tracks(tmp_path):
    """--confirmed-only exports exactly the boxes of tracks.parquet's confirmed tracks (the run has tracks that
    never became objects, so the filter has something to drop); a run without a tracker is refused in one line."""
    from pycocotools.coco import COCO

    run = tmp_path / "run"
    result = run_cli("run", str(SUBURBAN), "-o", str(run), "--max-frames", "150", "--no-video", "--no-report", "-q")
    assert result.returncode == 0, result.stderr
    tracks = pd.read_parquet(run / "tracks.parquet")
    objects = set(tracks.loc[tracks["confirmed"], "track_id"])
    assert objects and len(objects) < len(tracks)  # objects, and tracks that never became one
    for flag, wanted in (([], kept(run)), (["--confirmed-only"], kept(run).query("track_id in @objects"))):
        export(run, tmp_path / f"coco{len(flag)}", "coco", *flag)
        document = COCO(str(tmp_path / f"coco{len(flag)}" / "annotations.json"))
        assert sorted(a["track_id"] for a in document.dataset["annotations"]) == sorted(wanted["track_id"])
    untracked = tmp_path / "untracked"
    result = run_cli("run", str(SUBURBAN), "-o", str(untracked), "--max-frames", "5", "--tracker", "none",
                     "--no-video", "--no-report", "-q")
    assert result.returncode == 0, result.stderr
    result = run_cli("export", str(untracked), "--to", "coco", "--dest", str(tmp_path / "none"), "--confirmed-only")
    assert result.returncode == 2 and "needs a tracked run" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "none").exists()

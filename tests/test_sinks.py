"""Writers: the annotated video keeps timestamps and audio, tables and MOT files read back, crashes leave no
finished-looking file."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import PARKING, SUBURBAN, frame_times
from vidpipe.detections import Detections
from vidpipe.frames import Frame
from vidpipe.sinks import DetectionTableSink, FrameTableSink, MotSink, VideoSink
from vidpipe.sources import Sampling, open_source

NAMES = ("person", "car", "traffic light")


def write_video(source_path, out: Path, sampling=Sampling(), **kwargs) -> VideoSink:
    source = open_source(source_path, sampling)
    sink = VideoSink(out, source.info, **kwargs)
    for frame in source:
        sink.write(frame, Detections.empty(NAMES))
    sink.close()
    return sink


def test_variable_frame_rate_video_keeps_every_timestamp(tmp_path):
    out = tmp_path / "annotated.mp4"
    write_video(SUBURBAN, out, preset="ultrafast")
    assert frame_times(out) == pytest.approx(frame_times(SUBURBAN), abs=1e-6)  # no drift, not even 1 tick
    with av.open(str(out)) as written, av.open(str(SUBURBAN)) as source:
        w, s = written.streams.video[0], source.streams.video[0]
        assert w.codec_context.name == "h264" and w.codec_context.pix_fmt == "yuv420p"
        assert float(w.average_rate) == pytest.approx(24.013, abs=0.001)
        assert abs(float(w.duration * w.time_base) - float(s.duration * s.time_base)) < 1 / 24
        assert not written.streams.audio


def test_audio_is_copied_and_trimmed_with_the_video(tmp_path):
    out = tmp_path / "clip.mp4"
    write_video(PARKING, out, Sampling(start=4.0, max_frames=50), preset="ultrafast", audio_to_end=False)
    with av.open(str(out)) as written:
        audio = written.streams.audio[0]
        assert audio.codec_context.name == "aac" and audio.sample_rate == 48000
        assert len(list(written.decode(audio))) > 150  # ~4 s of 1024-sample AAC frames at 48 kHz
        assert float(audio.duration * audio.time_base) == pytest.approx(50 / 12.5, abs=0.05)
    assert frame_times(out)[0] == 0.0 and frame_times(out)[-1] == pytest.approx(49 / 12.5)


def _late_picture(path: Path, picture_at: float = 2.0, seconds: float = 5.0, fps: int = 10) -> Path:
    """A clip whose sound starts at 0 and its picture at `picture_at` s (the parking clip's frames)."""
    from fractions import Fraction

    images = [f.to_ndarray(format="rgb24") for _, f in zip(range(30), av.open(str(PARKING)).decode(video=0))]
    with av.open(str(path), "w") as out:
        video, audio = out.add_stream("libx264", rate=fps), out.add_stream("aac", rate=48000)
        video.width, video.height, video.pix_fmt = 768, 432, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        tone = np.sin(np.arange(int(48000 * seconds)) * 2 * np.pi * 440 / 48000).astype(np.float32)
        sound = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
        sound.sample_rate, sound.pts, sound.time_base = 48000, 0, Fraction(1, 48000)
        for packet in [*audio.encode(sound), *audio.encode(None)]:
            out.mux(packet)
        for i in range(int((seconds - picture_at) * fps)):
            picture = av.VideoFrame.from_ndarray(images[i % len(images)], format="rgb24")
            picture.pts, picture.time_base = round((picture_at + i / fps) * 1000), Fraction(1, 1000)
            for packet in video.encode(picture):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return path


def _starts(path: Path) -> tuple[float, float]:
    """When the picture and the sound start, in seconds, as a player lines them up."""
    with av.open(str(path)) as container:
        return tuple(float(s.start_time * s.time_base) for s in (container.streams.video[0],
                                                                  container.streams.audio[0]))


def test_a_picture_that_starts_after_its_sound_keeps_the_offset_in_the_video_and_the_tables(tmp_path):
    """A clip whose picture starts 2 s after its sound: the annotated video keeps the sound 2 s ahead (it
    used to start both at 0, the sound 2 s off the picture), and the first row's time_s is 2.0, when a
    player shows that frame."""
    from conftest import run_cli

    clip = _late_picture(tmp_path / "late.mp4")
    picture, sound = _starts(clip)
    assert picture == pytest.approx(2.0) and sound <= 0.03  # the made clip is what it should be
    result = run_cli("run", str(clip), "-o", str(tmp_path / "out"), "--no-report", "-q")
    assert result.returncode == 0, result.stderr
    out_picture, out_sound = _starts(tmp_path / "out" / "annotated.mp4")
    assert out_picture - out_sound == pytest.approx(picture - sound, abs=0.1)  # within one frame
    frames = pd.read_parquet(tmp_path / "out" / "frames.parquet")
    assert frames["time_s"].iloc[0] == pytest.approx(2.0) and len(frames) == 30


def test_odd_frame_size_is_padded_to_even(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    for i, frame in enumerate(open_source(PARKING, Sampling(max_frames=3))):
        cv2.imwrite(str(folder / f"{i}.png"), frame.image[:75, :101])
    out = tmp_path / "odd.mp4"
    sink = write_video(folder, out)
    assert (sink.width, sink.height) == (102, 76)
    with av.open(str(out)) as written:
        assert len(list(written.decode(video=0))) == 3


def test_crash_leaves_only_a_partial_file(tmp_path):
    out = tmp_path / "annotated.mp4"
    source = open_source(PARKING, Sampling(max_frames=5))
    sink = VideoSink(out, source.info)
    for frame in source:
        sink.write(frame, Detections.empty(NAMES))
    assert not out.exists() and (tmp_path / ".annotated.mp4.partial").exists()
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def sample_rows() -> list[tuple[Frame, Detections]]:
    image = np.zeros((4, 4, 3), np.uint8)
    rows = []
    for i in range(7):
        n = i % 3  # 0, 1 or 2 detections: some frames are empty
        boxes = np.array([[10 * i, 5, 10 * i + 20, 45], [1, 2, 3, 4]][:n], float)
        rows.append((Frame(i * 2, i * 0.5, image),
                     Detections(boxes, [0.9, 0.4][:n], [2, 0][:n], NAMES, np.array([i + 1, 99][:n]))))
    return rows


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_detection_table_has_one_row_per_detection(tmp_path, fmt):
    path = tmp_path / f"detections.{fmt}"
    sink = DetectionTableSink(path, "clip", fmt, flush_rows=2)  # several row groups
    for frame, d in sample_rows():
        sink.write(frame, d)
    sink.close()
    table = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    assert list(table.columns) == ["video", "frame", "time_s", "track_id", "linked_id", "class_id", "class_name",
                                   "track_class", "score", "detected", "x1", "y1", "x2", "y2"]
    assert table["linked_id"].tolist() == table["track_id"].tolist()  # no links: every track is its own
    assert table["track_class"].tolist() == table["class_name"].tolist()  # untracked: a row's class is its own
    assert len(table) == sink.rows == 0 + 1 + 2 + 0 + 1 + 2 + 0
    assert table["frame"].tolist() == [2, 4, 4, 8, 10, 10]
    assert table["class_name"].tolist() == ["traffic light", "traffic light", "person"] * 2
    assert table["time_s"].tolist() == [0.5, 1.0, 1.0, 2.0, 2.5, 2.5]
    assert table.loc[0, ["x1", "y1", "x2", "y2"]].tolist() == [10, 5, 30, 45]
    if fmt == "parquet":
        assert table.dtypes["frame"] == np.int64 and table.dtypes["score"] == np.float32


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_links_found_when_the_run_ends_reach_rows_already_written(tmp_path, fmt):
    """The offline linking's ids are known only at the end, after row groups were written: `close()` gives
    every row its track's linked id, the track ids stay, and tracks.txt carries the linked ids."""
    links: dict[int, int] = {}
    path = tmp_path / f"detections.{fmt}"
    sink, mot = DetectionTableSink(path, "clip", fmt, flush_rows=2, links=links), MotSink(tmp_path / "t.txt", links)
    for frame, d in sample_rows():
        sink.write(frame, d)
        mot.write(frame, d)
    links.update({5: 2, 6: 3})
    sink.close()
    mot.close()
    table = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    assert table["track_id"].tolist() == [2, 3, 99, 5, 6, 99]
    assert table["linked_id"].tolist() == [2, 3, 99, 2, 3, 99]
    assert np.loadtxt(tmp_path / "t.txt", delimiter=",", ndmin=2)[:, 1].tolist() == [2, 3, 99, 2, 3, 99]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, "t.txt"])  # no partial file left


def write_frames(path, **options) -> pd.DataFrame:
    sink = FrameTableSink(path, "clip", NAMES, "parquet", **options)
    for frame, d in sample_rows():
        sink.write(frame, d)
    sink.close()
    return pd.read_parquet(path)


def test_frame_table_lists_every_frame_and_counts_every_class_the_model_knows(tmp_path):
    """The same columns whatever the video shows (car is never seen here), so tables of any videos stack."""
    table = write_frames(tmp_path / "frames.parquet", top_k=0)
    assert list(table.columns) == ["video", "frame", "time_s", "n_detections", "n_person", "n_car",
                                   "n_traffic_light"]
    assert table["n_car"].tolist() == [0] * 7
    assert table["frame"].tolist() == [0, 2, 4, 6, 8, 10, 12]
    assert table["n_detections"].tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert table["n_person"].tolist() == [0, 0, 1, 0, 0, 1, 0]


def test_frame_table_columns_follow_the_requested_classes(tmp_path):
    """Asked for car and person: both columns, the never-seen car too, and no traffic-light column."""
    table = write_frames(tmp_path / "frames.parquet", classes=[1, 0], interest=[0, 1], top_k=2)
    assert list(table.columns) == ["video", "frame", "time_s", "n_detections", "n_person", "n_car",
                                   "p_any_person", "p_any_car", "top1_class", "top1_score", "top2_class",
                                   "top2_score"]
    assert table["n_car"].tolist() == [0] * 7
    assert table["top1_class"].isna().tolist()[:2] == [True, False]
    assert table["top1_class"].tolist()[1:3] == ["traffic light", "traffic light"]
    assert table["top2_class"].tolist()[2] == "person" and table["top2_score"].tolist()[2] == pytest.approx(0.4)
    assert np.isnan(table["top1_score"][0]) and table["top1_score"][1] == pytest.approx(0.9)


def test_p_any_on_known_scores(tmp_path):
    """Two people at 0.5 and 0.6: P(at least one) = 1 - 0.5 * 0.4 = 0.8; none in a frame: 0."""
    image = np.zeros((4, 4, 3), np.uint8)
    sink = FrameTableSink(tmp_path / "f.parquet", "clip", NAMES, "parquet", interest=[0, 1])
    boxes = np.array([[0, 0, 1, 1]] * 3, float)
    sink.write(Frame(0, 0.0, image), Detections(boxes, [0.5, 0.6, 0.99], [0, 0, 2], NAMES))
    sink.write(Frame(1, 0.1, image), Detections(boxes[:1], [0.3], [1], NAMES))
    sink.close()
    table = pd.read_parquet(tmp_path / "f.parquet")
    assert table["p_any_person"].tolist() == pytest.approx([0.8, 0.0])
    assert table["p_any_car"].tolist() == pytest.approx([0.0, 0.3])


def test_mot_file(tmp_path):
    path = tmp_path / "tracks.txt"
    sink = MotSink(path)
    for frame, d in sample_rows():
        sink.write(frame, d)
    sink.close()
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    assert rows.shape == (6, 10)
    np.testing.assert_allclose(rows[0], [3, 2, 10, 5, 20, 40, 0.9, -1, -1, -1], atol=1e-4)
    assert rows[:, 0].tolist() == [3, 5, 5, 9, 11, 11]  # 1-based source frame numbers

"""Reading frames: counts, indices and timestamps of real clips, image sequences, sampling, bad input."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import PARKING, SUBURBAN, frame_times, run_cli
from vidpipe.errors import InputError
from vidpipe.sources import Sampling, natural_key, open_source


def read_all(uri, **sampling) -> list:
    source = open_source(uri, Sampling(**sampling))
    try:
        return [(f.index, f.time, f.image.shape) for f in source]
    finally:
        source.close()


def test_video_frames_carry_index_time_and_bgr_image():
    source = open_source(PARKING)
    info = source.info
    assert (info.width, info.height, info.fps, info.frame_count) == (768, 432, 12.5, 377)
    assert info.audio_codec == "aac" and info.codec == "h264"
    frames = list(source)
    assert [f.index for f in frames] == list(range(377))
    np.testing.assert_allclose([f.time for f in frames], np.arange(377) / 12.5, atol=1e-9)
    assert frames[0].image.shape == (432, 768, 3) and frames[0].image.dtype == np.uint8
    assert source.lost_frames == 0
    # BGR like OpenCV: the same pixels cv2.VideoCapture decodes (both FFmpeg, so within rounding)
    capture = cv2.VideoCapture(str(PARKING))
    ok, first = capture.read()
    capture.release()
    assert ok and np.abs(first.astype(int) - frames[0].image.astype(int)).mean() < 2


def test_variable_frame_rate_timestamps_come_from_pts():
    """suburban-traffic averages 24.013 fps with uneven gaps: index/fps would drift, pts does not."""
    source = open_source(SUBURBAN)
    times = [f.time for f in source]
    assert len(times) == 905 == source.info.frame_count
    assert source.info.fps == pytest.approx(24.013, abs=1e-3)
    assert times == pytest.approx(frame_times(SUBURBAN), abs=1e-9)
    assert times[-1] == pytest.approx(37.646, abs=1e-3)
    assert abs(times[-1] - 904 / 24.0) > 0.001  # a constant-rate assumption would be wrong here


@pytest.mark.parametrize("pix_fmt, shortcut", [("yuv420p", True), ("yuvj420p", False), ("yuv444p", False)])
def test_frames_are_the_bgr_pyav_converts(tmp_path, pix_fmt, shortcut):
    """Video-range 4:2:0 frames take OpenCV's conversion (the source's fast path), within rounding of PyAV's;
    full-range and 4:4:4 frames, which that conversion would misread, are PyAV's own, exactly."""
    path = tmp_path / f"{pix_fmt}.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 768, 432, pix_fmt
        for frame in open_source(PARKING, Sampling(max_frames=5)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame.image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with av.open(str(path)) as container:
        expected = [f.to_ndarray(format="bgr24").astype(int) for f in container.decode(video=0)]
    ours = [f.image.astype(int) for f in open_source(path)]
    assert len(ours) == len(expected) == 5
    for mine, theirs in zip(ours, expected):
        difference = np.abs(mine - theirs)
        assert difference.mean() < 1.5 and difference.max() <= 8  # rounding and chroma siting only
        assert (difference.max() > 0) == shortcut  # OpenCV rounds unlike swscale: which one converted


@pytest.mark.parametrize("suffix, codec", [("mkv", "libx264"), ("mov", "libx264"), ("avi", "mpeg4"),
                                           ("webm", "libvpx-vp9")])
def test_common_containers(tmp_path, suffix, codec):
    """20 real frames re-encoded into each container read back with their count and timestamps."""
    path = tmp_path / f"clip.{suffix}"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 768, 432, "yuv420p"
        for frame in open_source(PARKING, Sampling(max_frames=20)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame.image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    frames = read_all(path)
    assert [i for i, _, _ in frames] == list(range(20))
    np.testing.assert_allclose([t for _, t, _ in frames], np.arange(20) / 25, atol=1e-3)
    assert frames[0][2] == (432, 768, 3)


def test_stride_start_end_and_max_frames():
    frames = read_all(PARKING, stride=5, start=2.0, end=6.0)
    assert [i for i, _, _ in frames] == list(range(25, 75, 5))
    assert read_all(PARKING, max_frames=7)[-1][0] == 6
    assert len(read_all(PARKING, max_frames=7)) == 7


def test_sample_fps_picks_frames_by_timestamp():
    """1 frame per second: the first frame at or after each whole second, on a variable-rate clip."""
    frames = read_all(SUBURBAN, sample_fps=1.0)
    times = np.array([t for _, t, _ in frames])
    assert len(frames) == 38
    assert np.all(np.floor(times + 1e-6) == np.arange(38))
    all_times = np.array(frame_times(SUBURBAN))
    for index, time, _ in frames:  # nothing earlier in that second was skipped
        assert all_times[index] == time
        assert index == 0 or all_times[index - 1] < np.floor(time + 1e-6)


def test_sampling_rejects_contradictions():
    with pytest.raises(InputError, match="either --stride or --sample-fps"):
        Sampling(stride=2, sample_fps=1)
    with pytest.raises(InputError, match="--end"):
        Sampling(start=5, end=2)
    with pytest.raises(InputError, match="--stride"):
        Sampling(stride=0)


@pytest.fixture()
def image_folder(tmp_path) -> Path:
    """Frames 0, 1, 2, 10 of the parking clip as img0.png ... img10.png, plus a seqinfo.ini at 12.5 fps."""
    folder = tmp_path / "seq" / "img1"
    folder.mkdir(parents=True)
    frames = {f.index: f.image for f in open_source(PARKING, Sampling(max_frames=11))}
    for i in (0, 1, 2, 10):
        cv2.imwrite(str(folder / f"img{i}.png"), frames[i])
    (folder / "notes.txt").write_text("not an image")
    (tmp_path / "seq" / "seqinfo.ini").write_text("[Sequence]\nname=seq\nframeRate=12.5\n")
    return folder


def test_image_folder_natural_order_and_seqinfo_rate(image_folder):
    source = open_source(image_folder)
    frames = list(source)
    assert source.info.name == "seq"  # a MOTChallenge img1/ folder is named after its sequence
    assert source.info.fps == 12.5 and source.info.kind == "images"
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert [f.time for f in frames] == [0.0, 0.08, 0.16, 0.24]
    expected = cv2.imread(str(image_folder / "img10.png"))
    assert np.array_equal(frames[3].image, expected)  # img10 sorts after img2


def test_glob_and_fps_option(image_folder):
    source = open_source(str(image_folder / "img1*.png"), fps=5)
    assert [f.time for f in source] == [0.0, 0.2]  # img1, img10
    assert source.info.fps == 5


def test_single_image_is_one_frame(image_folder):
    frames = read_all(image_folder / "img2.png")
    assert frames == [(0, 0.0, (432, 768, 3))]


def test_image_url_is_one_frame(image_folder):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(image_folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/img2.png"
        source = open_source(url)
        frames = list(source)
        assert len(frames) == 1 and source.info.name == "img2"
        assert np.array_equal(frames[0].image, cv2.imread(str(image_folder / "img2.png")))
        with pytest.raises(InputError, match="cannot fetch"):
            open_source(f"http://127.0.0.1:{server.server_port}/missing.png")
    finally:
        server.shutdown()


def test_natural_key():
    assert sorted(["f10.jpg", "f2.jpg", "F1.jpg"], key=natural_key) == ["F1.jpg", "f2.jpg", "f10.jpg"]


def test_truncated_video_yields_decodable_frames_and_counts_the_rest(tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(PARKING.read_bytes()[:1_400_000])  # moov is at the front, media data is cut
    source = open_source(cut)
    frames = list(source)
    assert 100 < len(frames) < 377
    assert source.lost_frames == 377 - len(frames)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.mp4", "does not exist"),
        (lambda d: d, "folder with no images"),
        (lambda d: _write(d / "fake.mp4", b"this is text, not video"), "is not a readable video"),
        (lambda d: d / "nothing*.png", "no images match"),
    ],
    ids=["missing", "empty-folder", "text-as-mp4", "empty-glob"],
)
def test_bad_inputs_raise_input_error(tmp_path, make, message):
    with pytest.raises(InputError, match=message):
        open_source(make(tmp_path))


def write_zero_frame_video(path: Path) -> Path:
    """A container with a header and no frames (what a recorder killed at once leaves)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4" if path.suffix == ".avi" else "libx264", rate=25)
        stream.width, stream.height = 64, 64
        container.start_encoding()
    return path


def test_zero_frame_videos(tmp_path):
    source = open_source(write_zero_frame_video(tmp_path / "empty.avi"))
    assert source.info.frame_count is None and list(source) == []
    with pytest.raises(InputError, match="has no video stream"):
        open_source(write_zero_frame_video(tmp_path / "empty.mp4"))


def test_folder_of_unreadable_images(tmp_path):
    shutil.copy(Path(__file__), tmp_path / "broken.jpg")
    with pytest.raises(InputError, match="could be read"):
        open_source(tmp_path)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _encode(path: Path, rate, gop: int, seconds: float, size=(320, 180), vfr: bool = False) -> Path:
    """The traffic clip re-encoded with x264's B-frames (and pyramid), a fixed GOP, a given frame rate; `vfr`
    stamps frames 33-67 ms apart at random, as a phone does."""
    from fractions import Fraction

    frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(120), av.open(str(SUBURBAN)).decode(video=0))]
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "veryfast", "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        if vfr:
            stream.codec_context.time_base = Fraction(1, 1000)
        t, n = 0, 0
        while (t / 1000 if vfr else n / float(rate)) < seconds:
            image = av.VideoFrame.from_ndarray(cv2.resize(frames[n % len(frames)], size), format="rgb24")
            if vfr:
                image.pts, image.time_base = t, Fraction(1, 1000)
                t += int(rng.choice([33, 40, 50, 67]))
            for packet in stream.encode(image):
                out.mux(packet)
            n += 1
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def b_frame_clips(tmp_path_factory):
    from fractions import Fraction

    folder = tmp_path_factory.mktemp("gops")
    return [_encode(folder / "ntsc-2s.mp4", Fraction(30000, 1001), 60, 12),
            _encode(folder / "vfr-2s.mp4", 30, 60, 12, vfr=True),
            _encode(folder / "30fps-5s.mp4", 30, 150, 12)]


@pytest.mark.parametrize("sampling", [Sampling(sample_fps=1), Sampling(stride=3), Sampling(start=2.3),
                                      Sampling(sample_fps=2, start=5.5, end=10), Sampling(sample_fps=1, max_frames=4),
                                      Sampling(stride=7, start=1)], ids=str)
def test_sampled_decoding_gives_exactly_the_frames_of_decoding_everything(b_frame_clips, sampling):
    """Skipping GOPs, non-reference frames and the ends of GOPs changes nothing: the same frames (index,
    timestamp, every pixel) as decoding every frame, on H.264 with B-frames at 29.97 fps, a variable rate
    and 5 s GOPs; and it decodes fewer pictures."""
    from vidpipe.sources import VideoSource

    for clip in b_frame_clips:
        results = []
        for exact in (False, True):
            source = VideoSource(str(clip), sampling)
            source.exact_skipping = exact
            frames = [(f.index, f.time, f.image.tobytes()) for f in source]
            results.append((frames, source.decoded_frames, source.lost_frames, source.unread_frames))
            source.close()
        (every, decoded_all, *counts_all), (sampled, decoded, *counts) = results
        assert every and sampled == every, clip.name
        assert counts == counts_all  # nothing lost; the same frames unread after a stop
        assert decoded < decoded_all, (clip.name, decoded, decoded_all)


def test_one_fps_rows_join_whole_second_features_at_any_frame_rate(b_frame_clips, tmp_path):
    """YouTube-8M's frame features are keyed on whole seconds. At 29.97 fps the frames 1 fps keeps are at
    1.001, 2.002 ... s, at 12.5 fps at 1.04, 2.0, 3.04 ...: joined on `time_s` most rows are lost. Each row's
    `target_s`, the second it stands for, joins every one, at 29.97, 25, 12.5 fps and a variable rate."""
    from fractions import Fraction

    clips = tmp_path / "clips"
    clips.mkdir()
    for clip in b_frame_clips[:2]:  # 29.97 fps and the variable rate
        shutil.copy(clip, clips / clip.name)
    _encode(clips / "pal.mp4", 25, 50, 12)
    _encode(clips / "12.5fps.mp4", Fraction(25, 2), 25, 12)
    result = run_cli("batch", str(clips), "-o", str(tmp_path / "out"), "--pipeline", "yt8m", "-q")
    assert result.returncode == 0, result.stderr
    frames = pd.read_parquet(tmp_path / "out" / "frames")
    features = pd.DataFrame([(video, second) for video in frames["video_id"].unique() for second in range(12)],
                            columns=["video_id", "second"])  # one row per whole second of each 12 s clip
    joined = features.merge(frames, left_on=["video_id", "second"], right_on=["video_id", "target_s"])
    assert len(joined) == len(features) == len(frames) == 48, frames[["video_id", "time_s", "target_s"]]
    assert (frames["time_s"] != frames["target_s"]).sum() >= 12  # the frames' own times are not whole seconds
    assert ((frames["target_s"] <= frames["time_s"]) & (frames["time_s"] < frames["target_s"] + 1)).all()


def test_one_frame_a_second_decodes_well_under_60_percent_of_a_30_fps_video(b_frame_clips):
    from vidpipe.sources import VideoSource

    source = VideoSource(str(b_frame_clips[2].with_name("ntsc-2s.mp4")), Sampling(sample_fps=1))
    kept = sum(1 for _ in source)
    packets = sum(1 for p in av.open(str(source.info.uri)).demux(video=0) if p.size)
    assert kept == 12 and source.decoded_frames < 0.6 * packets, (source.decoded_frames, packets)


def test_keyframes_mode_decodes_only_keyframes_each_standing_for_its_slot(b_frame_clips):
    """--sample-mode keyframes at 1 fps on 5 s GOPs: one frame per keyframe (every 150th), decoded alone,
    each carrying the 1 s slot it stands for; slots without a keyframe get no frame."""
    from vidpipe.sources import VideoSource

    clip = b_frame_clips[2]  # 30 fps, a keyframe every 150 frames
    source = VideoSource(str(clip), Sampling(sample_fps=1, sample_mode="keyframes"))
    frames = list(source)
    assert [f.index for f in frames] == [0, 150, 300] and source.decoded_frames == 3
    assert all(f.target_s <= f.time < f.target_s + 1 and f.target_s == int(f.time) for f in frames)
    exact = VideoSource(str(clip), Sampling(sample_fps=1))
    same_time = {f.index: f.image for f in exact}
    assert all((f.image == same_time[f.index]).all() for f in frames)  # a keyframe is the same picture
    with pytest.raises(InputError, match="--sample-mode keyframes needs --sample-fps"):
        Sampling(sample_mode="keyframes")

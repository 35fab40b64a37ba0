"""Bad values, options and files are one line on stderr and exit 2, before a model is loaded or a file is
written: not-a-number and infinite values too, for `run`, `live` and `batch` alike."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest

from conftest import PARKING, run_cli


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def y4m(path: Path, width: int, height: int) -> Path:
    """A raw-video file whose header claims a picture size."""
    return write(path, f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + b"\x80" * 1000)


def assert_one_error(result, message: str, code: int = 2) -> None:
    """The command failed with `code` and said so in one line (no traceback, no library warning) that holds
    `message`."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code and len(lines) == 1 and message in lines[0], result.stderr


def dead_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RUN = [
    (["--sample-fps", "nan"], "sample_fps must be a finite number"),
    (["--sequence-fps", "nan"], "sequence_fps must be a finite number"),
    (["--end", "nan"], "end must be a finite number"),
    (["--start", "inf"], "start must be a finite number"),
    (["--conf", "nan"], "conf must be a finite number"),
    (["--zone-hysteresis", "-1"], "zone_hysteresis_s must be >= 0 seconds"),
    (["--zone-hysteresis", "nan"], "zone_hysteresis_s must be a finite number"),
    (["--zone-hysteresis", "inf"], "zone_hysteresis_s must be a finite number"),
    (["--imgsz", "100000"], "imgsz must be an integer from 32 to 4096"),
    (["--classes", ""], "classes is empty"),
    (["--line", "a=nan,0,1,1"], "line 'a': points must be finite numbers"),
    (["--line", "a=inf,0,1,1"], "line 'a': points must be finite numbers"),
    (["--zone", "z=nan,0,1,0,1,1"], "zone 'z': points must be finite numbers"),
    # finite, but past any picture: the geometry's products would overflow to inf and nan
    (["--line", "road=0,0,1e308,1e308"], "line 'road': points must be fractions of the frame (0 to 1) or pixels"),
    (["--zone", "z=0,0,2e5,0,0,2e5"], "zone 'z': points must be fractions of the frame (0 to 1) or pixels within"),
    (["--sample-fps", "1e308"], "--sample-fps must be above 0 and at most 10,000"),
    (["--sequence-fps", "1e308"], "sequence_fps must be above 0 and at most 10,000"),
    (["--batch-size", "99999999999999999999"], "batch_size must lie in [1, 1024]"),
]


@pytest.mark.parametrize("options, message", RUN, ids=[" ".join(o) for o, _ in RUN])
def test_run_refuses_each_bad_number_in_one_line(tmp_path, options, message):
    out = tmp_path / "out"
    result = run_cli("run", str(PARKING), *options, "-o", str(out), "-q")
    assert_one_error(result, message)  # no numpy warning beside it
    assert result.stderr.startswith("vidpipe: error:")
    assert not out.exists()  # refused before anything was written, not even a hidden partial file


PRESETS = [
    ("classes: 5\n", "classes must be names or ids"),
    ("conf: 0.3\nconf: 0.4\n", "line 2 is not valid YAML: duplicate key 'conf'"),
    (b"\x80\x02\x8a\nlf\x9c\xfc\x9cF\xf9 j\xa8P\x19.", "is not a YAML text file"),
    ("zones:\n  - {name: z, points: [[.nan, 0], [1, 0], [1, 1]]}\n", "zone 'z': points must be finite numbers"),
    ("lines:\n  - {name: l, points: [[0, .inf], [1, 1]]}\n", "line 'l': points must be finite numbers"),
    ("end: .nan\n", "end must be a finite number"),
]


@pytest.mark.parametrize("text, message", PRESETS, ids=["classes-int", "duplicate-key", "binary", "zone-nan",
                                                       "line-inf", "end-nan"])
def test_a_preset_of_the_wrong_type_or_shape_is_named(tmp_path, text, message):
    for command in ("run", "live"):
        result = run_cli(command, str(PARKING), "--pipeline", str(write(tmp_path / "p.yaml", text)), "-o",
                         str(tmp_path / "out"), "-q")
        assert_one_error(result, message)


@pytest.mark.parametrize("size", [(60000, 60000), (0, 0)], ids=["60000x60000", "0x0"])
def test_a_video_of_an_impossible_size_says_so(tmp_path, size):
    result = run_cli("run", str(y4m(tmp_path / "clip.y4m", *size)), "-o", str(tmp_path / "out"), "-q")
    assert_one_error(result, f"Picture size {size[0]}x{size[1]} is invalid")
    assert "busy" not in result.stderr


def test_an_imgsz_off_the_stride_is_rounded_up_with_a_note(tmp_path):
    out = tmp_path / "out"
    result = run_cli("run", str(PARKING), "--imgsz", "33", "--max-frames", "3", "--no-video", "--no-report", "-o",
                     str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert "--imgsz 33 is not a multiple of the model's stride (32): using 64" in result.stderr
    assert json.loads((out / "summary.json").read_text())["detector"]["imgsz"] == 64


LIVE = [
    (["--duration", "-1"], "--duration must be a positive number, got -1.0"),
    (["--duration", "0"], "--duration must be a positive number, got 0.0"),
    (["--duration", "nan"], "--duration must be a positive number, got nan"),
    (["--open-timeout", "-1"], "--open-timeout must be a positive number"),
    (["--read-timeout", "nan"], "--read-timeout must be a positive number"),
    (["--reconnect-delay", "-1"], "--reconnect-delay must be a number of seconds >= 0"),
    (["--max-reconnects", "-1"], "--max-reconnects must be >= 0"),
    (["--max-reconnect-delay", "0"], "--max-reconnect-delay must be a positive number"),
    (["--camera-fps", "nan"], "--camera-fps must be a positive number"),
    (["--width", "-5"], "--width must be at least 1 pixel"),
]


@pytest.mark.parametrize("options, message", LIVE, ids=[" ".join(o) for o, _ in LIVE])
def test_live_refuses_each_bad_option_before_it_opens_the_source(tmp_path, options, message):
    """The source is a camera that does not exist: a check made only after opening it would say that instead."""
    result = run_cli("live", "9", *options, "-o", str(tmp_path / "out"), "-q")
    assert_one_error(result, message)


def test_live_refuses_camera_options_and_a_bad_address_for_a_stream_before_connecting(tmp_path):
    url = f"http://127.0.0.1:{dead_port()}/live.ts"  # never answers: connecting first would retry for ever
    for options, message in ((["--width", "640"], "--width, --height and --camera-fps are for cameras"),
                             (["--camera-fps", "30"], "--width, --height and --camera-fps are for cameras"),
                             (["--serve", "bogus"], "--serve takes [HOST:]PORT")):
        started = time.monotonic()
        result = run_cli("live", url, *options, "-o", str(tmp_path / "out"), "-q", timeout=60)
        assert_one_error(result, message)
        assert time.monotonic() - started < 20


def test_batch_refuses_bad_manifests_and_numbers_in_one_line(tmp_path):
    no_path = write(tmp_path / "no-path.csv", f"file,video_id\n{PARKING},a\n")
    binary = write(tmp_path / "binary.csv", b"\x80\x02\x8a\nlf\x9c\xfc\x9cF\xf9 j\xa8P\x19.")
    for args, message in (([str(no_path)], "a CSV manifest needs a header with a path (or url) column"),
                          ([str(binary)], "is not a text manifest"),
                          ([str(PARKING), "--segment-seconds", "nan"], "--segment-seconds must be a positive number")):
        out = tmp_path / "corpus"
        result = run_cli("batch", *args, "-o", str(out), "-q")
        assert_one_error(result, message)
        assert not out.exists()


def test_an_empty_input_name_is_named_not_read_as_the_current_folder(tmp_path):
    """`Path('')` is the current folder: `batch ''` used to process every video under it."""
    shutil.copy(PARKING, tmp_path / "old-output.mp4")
    for command in ("run", "batch"):
        result = run_cli(command, "", "-o", str(tmp_path / "out"), "-q", cwd=tmp_path)
        assert_one_error(result, "the input is an empty name ('')")
        assert not (tmp_path / "out").exists()


def test_a_ray_address_nothing_answers_on_fails_at_once_with_the_reason(tmp_path):
    pytest.importorskip("ray")
    started = time.monotonic()
    result = run_cli("batch", str(PARKING), "-o", str(tmp_path / "corpus"), "--executor", "ray", "--address",
                     f"ray://127.0.0.1:{dead_port()}", "-q", timeout=120)
    assert_one_error(result, "cannot reach the Ray cluster at ray://127.0.0.1:", code=1)
    assert "refused" in result.stderr.lower()
    assert time.monotonic() - started < 15  # not Ray client's 30 s wait


def test_a_truncated_jpeg_in_a_folder_is_one_line_of_ours_not_libjpegs(tmp_path):
    import cv2

    from vidpipe.sources import open_source

    folder = tmp_path / "images"
    folder.mkdir()
    frames = iter(open_source(PARKING))
    for name in ("a", "b"):
        cv2.imwrite(str(folder / f"{name}.jpg"), next(frames).image)
    data = (folder / "a.jpg").read_bytes()
    (folder / "a.jpg").write_bytes(data[: len(data) // 2])
    result = run_cli("run", str(folder), "-o", str(tmp_path / "out"), "--no-video", "--no-report", "-q")
    assert result.returncode == 0, result.stderr
    assert "Premature end of JPEG file" not in result.stderr
    assert "a.jpg is a truncated JPEG (its end is missing): using what decodes" in result.stderr
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["frames_processed"] == 2

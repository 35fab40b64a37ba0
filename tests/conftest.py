"""Shared fixtures: the repository's sample clips and model, the read-only ../shared data, one loaded YOLO."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_videos"
PARKING = SAMPLES / "parking-lot-cars.mp4"  # 768x432, 12.5 fps, 377 frames, AAC audio
SUBURBAN = SAMPLES / "suburban-traffic.mp4"  # 640x352, 24.013 fps average, variable, 905 frames, no audio
SHARED = Path(os.environ.get("VIDPIPE_SHARED", REPO.parent / "shared"))
# Exports of the model (OpenVINO, ONNX) go to a cache made for this test session, so every run exercises
# the export itself; subprocesses inherit it. Set VIDPIPE_CACHE to reuse one between runs.
if not os.environ.get("VIDPIPE_CACHE"):
    os.environ["VIDPIPE_CACHE"] = tempfile.mkdtemp(prefix="vidpipe-test-cache-")


def _fix_auto_precision(precision: str) -> None:
    """`VIDPIPE_TEST_PRECISION=int8|default` runs the suite as `--precision auto` runs on a CPU that picks that
    precision (the choice is written where auto caches it), so one machine can check what other CPUs get:
    an AMX Xeon may keep bf16 where this one takes int8."""
    from vidpipe.detectors import quantize, runtimes
    from vidpipe.detectors.yolo import DEFAULT_MODEL

    if precision not in ("int8", "default"):
        raise pytest.UsageError(f"VIDPIPE_TEST_PRECISION={precision!r}: int8 or default")
    cpu, capabilities = runtimes.openvino_cpu()
    default = "bf16" if "BF16" in capabilities else "fp32"
    int8_fps = 2 * quantize.FASTER * 50.0 if precision == "int8" else 50.0
    choice = quantize.Choice("int8" if precision == "int8" else "auto", f"fixed by VIDPIPE_TEST_PRECISION={precision}",
                             cpu, default, 50.0, int8_fps)
    name = (f"{runtimes.file_hash(DEFAULT_MODEL)}-r{quantize.RECIPE}-{quantize._slug(cpu)}-"
            f"{runtimes._runtime_version('openvino')}.json")
    folder = runtimes.cache_dir() / "choices"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(dataclasses.asdict(choice)))


if os.environ.get("VIDPIPE_TEST_PRECISION"):
    _fix_auto_precision(os.environ["VIDPIPE_TEST_PRECISION"])


def shared_path(*parts: str) -> Path:
    """A path inside the read-only shared data; the test skips, saying why, where it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared test data, not shipped: set VIDPIPE_SHARED to its folder)")
    return path


def frame_times(path: Path) -> list[float]:
    """Every frame's timestamp in seconds, read straight from the container with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        return [float((f.pts - start) * stream.time_base) for f in container.decode(stream)]


def top_level_atoms(path: Path) -> list[str]:
    """The MP4 file's top-level boxes in file order (ftyp, moov, mdat...), read from their headers."""
    atoms = []
    with open(path, "rb") as handle:
        while header := handle.read(8):
            size, kind = int.from_bytes(header[:4], "big"), header[4:].decode("latin-1")
            if size == 1:
                size = int.from_bytes(handle.read(8), "big") - 8
            handle.seek(size - 8, 1)
            atoms.append(kind)
    return atoms


def run_cli(*args: str, timeout: float = 600, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """The real `vidpipe` command in a subprocess, as a user runs it (from the repository, unless `cwd`)."""
    return subprocess.run(
        [sys.executable, "-m", "vidpipe", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


@pytest.fixture(scope="session")
def yolo():
    """The bundled YOLOv8n behind vidpipe's backend, loaded once for the session (conf 0.25, as predict)."""
    from vidpipe.detectors import load_detector

    return load_detector("yolo")


@pytest.fixture()
def browser():
    """Debian's headless Chromium through Selenium, with the browser console's messages kept."""
    import shutil

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--window-size=1280,800"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()


def vidpipe(*args: str) -> subprocess.Popen:
    """The real `vidpipe` command started in the background, for tests that signal or watch it."""
    return subprocess.Popen([sys.executable, "-m", "vidpipe", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout: float = 120) -> None:
    """Poll `condition` until it holds; fail the test if it never does."""
    deadline = time.time() + timeout
    while not condition() and time.time() < deadline:
        time.sleep(0.05)
    assert condition(), "timed out"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

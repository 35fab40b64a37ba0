"""Choosing and caching the CPU runtime: OpenVINO, else ONNX Runtime, else torch; exports made once."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import PARKING, REPO, SUBURBAN
from vidpipe.detectors import load_detector, runtimes
from vidpipe.detectors.yolo import DEFAULT_MODEL
from vidpipe.errors import InputError
from vidpipe.sources import Sampling, open_source


def test_auto_prefers_openvino_then_onnx_then_torch(monkeypatch):
    assert runtimes.resolve_runtime("auto", "cpu", DEFAULT_MODEL) == "openvino"
    monkeypatch.setattr(runtimes, "missing", lambda r: ["openvino"] if r == "openvino" else [])
    assert runtimes.resolve_runtime("auto", "cpu", DEFAULT_MODEL) == "onnx"
    monkeypatch.setattr(runtimes, "missing", lambda r: [r])
    assert runtimes.resolve_runtime("auto", "cpu", DEFAULT_MODEL) == "torch"


def test_gpus_and_non_checkpoints_run_on_torch():
    assert runtimes.resolve_runtime("auto", "cuda:0", DEFAULT_MODEL) == "torch"
    assert runtimes.resolve_runtime("auto", "cpu", "model.onnx") == "torch"  # ultralytics runs its formats
    with pytest.raises(InputError, match="runs on the CPU"):
        runtimes.resolve_runtime("openvino", "cuda", DEFAULT_MODEL)
    with pytest.raises(InputError, match="not a .pt file"):
        runtimes.resolve_runtime("onnx", "cpu", "model.engine")
    with pytest.raises(InputError, match="unknown runtime"):
        runtimes.resolve_runtime("tensorrt", None, DEFAULT_MODEL)


def test_missing_runtime_names_what_to_install(monkeypatch):
    monkeypatch.setattr(runtimes, "missing", lambda r: ["onnxruntime"])
    with pytest.raises(InputError, match=r"--runtime onnx needs onnxruntime: pip install 'vidpipe\[onnx\]'"):
        runtimes.resolve_runtime("onnx", None, DEFAULT_MODEL)


@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_one_export_serves_every_frame_shape(tmp_path, monkeypatch, runtime):
    """Exported once per model and runtime, with a dynamic input: a second frame shape, or a second
    detector, compiles from the same export and exports nothing."""
    import cv2

    monkeypatch.setenv("VIDPIPE_CACHE", str(tmp_path))
    frames = [f.image for f in open_source(PARKING, Sampling(max_frames=2))]
    detector = load_detector("yolo", runtime=runtime, precision="fp32")  # int8: test_quantize
    detector.detect(frames)  # 768x432: letterboxed to 384x640
    (export,) = (tmp_path / "exports").iterdir()
    meta = json.loads((export / "model.json").read_text())
    assert meta["runtime"] == runtime and meta["shape"] == "dynamic"
    assert export.name.startswith(f"yolov8n-{runtimes.file_hash(DEFAULT_MODEL)}-{runtime}")
    stamps = {p.name: p.stat().st_mtime_ns for p in export.iterdir()}
    detector.detect([cv2.resize(frames[0], (480, 640)), cv2.resize(frames[0], (1280, 720))])  # two more shapes
    load_detector("yolo", runtime=runtime, precision="fp32").detect(frames)
    assert [p.name for p in (tmp_path / "exports").iterdir()] == [export.name]  # still the one export
    assert {p.name: p.stat().st_mtime_ns for p in export.iterdir()} == stamps  # reused, not written again


def test_openvino_keeps_each_compiled_shape_and_runs_without_that_cache(tmp_path, monkeypatch):
    """A shape compiled once is loaded from OpenVINO's cache by later sessions (a third of the compile
    time); where that cache cannot be written, the model compiles as before and gives the same boxes. (A
    truncated blob, as from a process killed while writing it, is compiled again by OpenVINO itself.)"""
    monkeypatch.setenv("VIDPIPE_CACHE", str(tmp_path))
    frames = [f.image for f in open_source(PARKING, Sampling(max_frames=2))]
    first = load_detector("yolo", runtime="openvino", precision="fp32").detect(frames)
    blobs = sorted((tmp_path / "compiled").iterdir())
    assert len(blobs) == 1 and blobs[0].stat().st_size > 1_000_000
    again = load_detector("yolo", runtime="openvino", precision="fp32").detect(frames)
    assert sorted((tmp_path / "compiled").iterdir()) == blobs  # loaded, not compiled and written again
    for folder in (tmp_path / "compiled").iterdir():
        folder.unlink()
    (tmp_path / "compiled").rmdir()
    (tmp_path / "compiled").write_text("not a folder")  # OpenVINO cannot keep anything here
    unkept = load_detector("yolo", runtime="openvino", precision="fp32").detect(frames)
    for a, b, c in zip(first, again, unkept):
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-3)
        np.testing.assert_allclose(a.xyxy, c.xyxy, atol=1e-3)


def test_a_cached_model_runs_without_torch(tmp_path):
    """Once exported (and quantised, where `auto` takes int8), a run needs neither torch nor ultralytics:
    faster start, a third of the memory."""
    code = ("import sys, vidpipe\n"
            f"vidpipe.run({str(PARKING)!r}, {str(tmp_path / 'out')!r}, max_frames=3, video=False, runtime='openvino')\n"
            "print('HEAVY', [m for m in ('torch', 'ultralytics') if m in sys.modules])")
    env_cache = {"VIDPIPE_CACHE": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                           env={**_env(), **env_cache}, timeout=300)
    assert "HEAVY ['torch', 'ultralytics']" in first.stdout, first.stderr  # the export needs them, once
    exports = sorted((tmp_path / "cache" / "exports").iterdir())
    assert "-openvino" in exports[0].name and len(exports) <= 2
    assert all(e.name.startswith(exports[0].name) for e in exports)  # the fp32 export, and int8 made from it
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={**_env(), **env_cache}, timeout=300)
    assert "HEAVY []" in second.stdout, second.stderr
    assert sorted((tmp_path / "cache" / "exports").iterdir()) == exports


def _env() -> dict:
    import os

    return dict(os.environ)


@pytest.mark.parametrize("runtime", ["openvino", "onnx", "torch"])
def test_batches_in_flight_come_back_in_order_with_detect_s_results(runtime):
    """The pipeline submits a batch before the previous ones are collected, from another thread; every
    frame must come back with what `detect` finds in it alone, frames of two sizes in one batch included."""
    from concurrent.futures import ThreadPoolExecutor

    import cv2

    frames = [f.image for f in open_source(SUBURBAN, Sampling(max_frames=12))]
    frames[5] = cv2.resize(frames[5], (640, 480))  # a second shape in one batch: two groups, two sessions
    batches = [frames[i : i + 4] for i in range(0, len(frames), 4)]
    detector = load_detector("yolo", runtime=runtime, precision="fp32")
    expected = [[detector.detect([frame])[0] for frame in batch] for batch in batches]
    with ThreadPoolExecutor(1) as submitter:  # submitted in one thread, collected in this one
        submitted = submitter.map(lambda batch: detector.submit(detector.prepare(batch)), batches)
        submitted = list(submitted)  # all three in flight before the first is collected
    results = [detector.collect(s) for s in submitted]
    assert sum(len(d) for batch in expected for d in batch) > 0
    for got, want in zip(results, expected):
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-3)
            np.testing.assert_array_equal(a.class_id, b.class_id)

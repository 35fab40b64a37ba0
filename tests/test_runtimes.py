"""Choosing and caching the CPU runtime: OpenVINO, else ONNX Runtime, else torch; exports made once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import PARKING, REPO
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


def test_export_is_cached_by_model_shape_and_runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDPIPE_CACHE", str(tmp_path))
    frames = [f.image for f in open_source(PARKING, Sampling(max_frames=2))]
    detector = load_detector("yolo", runtime="onnx")
    detector.detect(frames)
    (export,) = (tmp_path / "exports").iterdir()
    meta = json.loads((export / "model.json").read_text())
    assert meta["runtime"] == "onnx" and meta["shape"] == [384, 640] and (export / "model.onnx").is_file()
    assert export.name.startswith(f"yolov8n-{runtimes.file_hash(DEFAULT_MODEL)}-onnx")
    stamp = (export / "model.onnx").stat().st_mtime_ns
    load_detector("yolo", runtime="onnx").detect(frames)
    assert [p.name for p in (tmp_path / "exports").iterdir()] == [export.name]
    assert (export / "model.onnx").stat().st_mtime_ns == stamp  # reused, not exported again


def test_a_cached_model_runs_without_torch(tmp_path):
    """Once exported, a run needs neither torch nor ultralytics: faster start, a third of the memory."""
    code = ("import sys, vidpipe\n"
            f"vidpipe.run({str(PARKING)!r}, {str(tmp_path / 'out')!r}, max_frames=3, video=False)\n"
            "print('HEAVY', [m for m in ('torch', 'ultralytics') if m in sys.modules])")
    env_cache = {"VIDPIPE_CACHE": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                           env={**_env(), **env_cache}, timeout=300)
    assert "HEAVY ['torch', 'ultralytics']" in first.stdout, first.stderr  # the export needs them, once
    exports = sorted((tmp_path / "cache" / "exports").iterdir())
    assert len(exports) == 1 and "-openvino" in exports[0].name
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={**_env(), **env_cache}, timeout=300)
    assert "HEAVY []" in second.stdout, second.stderr
    assert sorted((tmp_path / "cache" / "exports").iterdir()) == exports


def _env() -> dict:
    import os

    return dict(os.environ)

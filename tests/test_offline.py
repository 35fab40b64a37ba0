"""vidpipe reaches no network at run time, even where its libraries would: OpenVINO and NNCF send a Google
Analytics event on import unless the user has chosen otherwise, and ultralytics, where it finds itself online,
sends usage events and asks PyPI for updates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PARKING, REPO

MODEL = REPO / "models" / "yolov8n.pt"
RECORDER = """import urllib.request

def record(request, *args, **kwargs):  # written down and refused: nothing leaves the machine
    with open({log!r}, "a") as out:
        out.write(request.full_url + "\\n")
    raise OSError("no network in this test")

urllib.request.urlopen = record
"""
# As on a machine that resolves every name: ultralytics then believes it is online.
ONLINE = ("import socket\n"
          "socket.getaddrinfo = lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, '', ('192.0.2.1', 0))]\n")


def python(home: Path, code: str) -> tuple[list[str], subprocess.CompletedProcess]:
    """Run `code` in a fresh interpreter as on a user's machine (a home with no OpenVINO consent file, no CI
    variable, which OpenVINO's telemetry honours): the URLs it requested over HTTP, and how it ended."""
    home.mkdir(parents=True, exist_ok=True)
    log = home / "requests.txt"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(home)
    done = subprocess.run([sys.executable, "-c", RECORDER.format(log=str(log)) + code], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return (log.read_text().splitlines() if log.exists() else []), done


def test_a_run_sends_nothing_where_openvino_alone_would(tmp_path):
    sent, _ = python(tmp_path / "alone", "import openvino")
    if not sent:
        pytest.skip("this OpenVINO sends nothing on import: nothing for vidpipe to decline")
    assert any("google-analytics.com" in url for url in sent), sent
    out = tmp_path / "out"
    argv = ["vidpipe", "run", str(PARKING), "-o", str(out), "--runtime", "openvino", "--max-frames", "4", "-q"]
    sent, done = python(tmp_path / "run", f"import runpy, sys\nsys.argv = {argv!r}\n"
                                          "runpy.run_module('vidpipe', run_name='__main__')")
    assert sent == [] and (out / "summary.json").is_file()
    assert "Traceback" not in done.stderr


def test_a_user_who_opted_in_keeps_openvino_telemetry(tmp_path):
    """The choice `opt_in_out --opt_in` wrote is the user's: vidpipe declines only where none was made."""
    consent = tmp_path / "home" / "intel" / "openvino_telemetry"
    consent.parent.mkdir(parents=True)
    consent.write_text("1")
    sent, _ = python(tmp_path / "home", "from vidpipe.detectors.runtimes import openvino_cpu\nopenvino_cpu()")
    assert any("google-analytics.com" in url for url in sent), sent


def test_ultralytics_is_imported_offline_and_the_environment_left_as_it_was(tmp_path):
    _, plain = python(tmp_path / "plain", ONLINE + "import ultralytics.utils\nprint(ultralytics.utils.ONLINE)")
    assert plain.stdout.split()[-1] == "True"  # where names resolve, ultralytics alone believes it is online
    _, loaded = python(tmp_path / "vidpipe", ONLINE + "import os\n"
                       f"from vidpipe.detectors.runtimes import load_ultralytics\nload_ultralytics({str(MODEL)!r})\n"
                       "import ultralytics.utils\nprint(ultralytics.utils.ONLINE, 'YOLO_OFFLINE' in os.environ)")
    assert loaded.stdout.split()[-2:] == ["False", "False"]

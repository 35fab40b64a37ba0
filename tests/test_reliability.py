"""What happens when things go wrong: stop signals at any moment, odd inputs, bad options, busy or unwritable
output folders. Each ends in one clear line, the right exit code, and outputs that tell the truth."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from conftest import PARKING, REPO, SUBURBAN, frame_times, run_cli, vidpipe, wait_for
from streaming import shrinking_transport_stream
from vidpipe.sources import Sampling, open_source


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_ctrl_c_in_a_batch_leaves_the_video_under_way_pending_and_resumes(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(PARKING, folder / f"{name}.mp4")
    out = tmp_path / "out"
    command = ["batch", str(folder), "-o", str(out), "--max-frames", "150", "--no-video", "-q"]
    process = vidpipe(*command)
    wait_for(lambda: (out / "videos" / "a" / ".frames.parquet.partial").exists() or
             (out / "videos" / "a" / "frames.parquet").exists())
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    videos = pd.read_parquet(out / "videos.parquet").set_index("video_id")
    assert "error" not in set(videos["status"]) and videos.loc["c", "status"] == "pending"  # c was never begun
    resumed = run_cli(*command)
    assert resumed.returncode == 0, resumed.stderr
    assert set(pd.read_parquet(out / "videos.parquet")["status"]) == {"complete"}


@pytest.mark.parametrize("command, code", [("run", 130), ("batch", 130), ("live", 0)])
def test_a_stop_signal_during_start_up_is_a_stop_not_an_error(tmp_path, command, code):
    """Stopped while the model loads: run and batch exit 130, live 0 (a stop is how live runs end)."""
    out = tmp_path / "out"
    process = vidpipe(command, str(PARKING), "-o", str(out), "-q")
    # Once the inference runtime's library is mapped, the command has started and is loading the model (a
    # fixed delay would, on a busy machine, land before Python has even started vidpipe).
    maps = Path(f"/proc/{process.pid}/maps")
    wait_for(lambda: process.poll() is not None or "openvino" in maps.read_text() or "libtorch" in maps.read_text())
    process.send_signal(signal.SIGTERM if command == "live" else signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr and "no decodable" not in stderr
    if (out / "videos.parquet").exists():  # a batch stopped once it has begun still writes its table
        assert "error" not in set(pd.read_parquet(out / "videos.parquet")["status"])


def test_an_interrupted_run_copies_audio_only_as_far_as_the_video(tmp_path):
    out = tmp_path / "out"
    process = vidpipe("run", str(PARKING), "-o", str(out), "-q")
    partial = out / ".annotated.mp4.partial"
    wait_for(lambda: partial.exists() and partial.stat().st_size > 300_000)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    with av.open(str(out / "annotated.mp4")) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        video_end = frame_times(out / "annotated.mp4")[-1] + 1 / 12.5
        audio_end = max(float((p.pts + p.duration) * audio.time_base) for p in container.demux(audio) if p.pts)
    assert video_end < 25  # stopped well before the clip's 30 s
    assert audio_end <= video_end + 0.1, (audio_end, video_end)
    assert video.frames > 0
    report = (out / "report.html").read_text()  # the report says the run was cut short
    assert 'id="status-banner"' in report and "<b>interrupted</b>" in report


def test_frame_indices_stay_the_source_index_after_undecodable_frames(tmp_path):
    """60 kB of garbage in the middle of an MP4: the frames in the hole are lost and counted, and every
    frame after it keeps the index its timestamp says (not shifted down by the frames lost)."""
    data = bytearray(SUBURBAN.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 60_000] = np.random.default_rng(0).integers(0, 256, 60_000, dtype=np.uint8).tobytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    result = run_cli("run", str(broken), "-o", str(tmp_path / "out"), "--no-video", "-q")
    assert result.returncode == 0, result.stderr
    assert "[h264" not in result.stderr  # FFmpeg's own decoder lines stay off the terminal
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    frames = pd.read_parquet(tmp_path / "out" / "frames.parquet")
    assert summary["source_frames_lost"] == 905 - len(frames) > 0
    fps = summary["input"]["fps"]
    assert (np.abs(np.round(frames["time_s"] * fps) - frames["frame"]) <= 1).all()
    assert frames["frame"].diff().max() > 1  # the hole is visible in the indices


def test_resume_redoes_a_video_whose_id_now_names_other_content(tmp_path):
    manifest = tmp_path / "list.csv"
    out = tmp_path / "out"
    command = ["batch", str(manifest), "-o", str(out), "--max-frames", "5", "--no-video", "-q"]
    manifest.write_text(f"video_id,path\nclip,{PARKING}\n")
    assert run_cli(*command).returncode == 0
    manifest.write_text(f"video_id,path\nclip,{SUBURBAN}\n")  # same id, other file
    result = run_cli(*command)
    assert result.returncode == 0, result.stderr
    assert f"clip: it now names {SUBURBAN}, not {PARKING}; redoing it" in result.stderr
    summary = json.loads((out / "videos" / "clip" / "summary.json").read_text())
    assert summary["input"]["uri"] == str(SUBURBAN)
    unchanged = run_cli(*command)  # and a third run, with nothing changed, skips it
    assert "already done" in unchanged.stderr and "redoing" not in unchanged.stderr


def test_resume_redoes_a_video_whose_file_was_rewritten(tmp_path):
    """The same path, rewritten (a new modification time): the message says the file changed, not that
    the id names another path (it used to name the same path twice, as if it had moved)."""
    import os
    import shutil

    clip = tmp_path / "clip.mp4"
    shutil.copy(PARKING, clip)
    out = tmp_path / "out"
    command = ["batch", str(clip), "-o", str(out), "--max-frames", "5", "--no-video", "-q"]
    assert run_cli(*command).returncode == 0
    os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 1_000_000_000))  # `touch`
    result = run_cli(*command)
    assert result.returncode == 0, result.stderr
    assert "clip: its file changed since it was processed (size or modification time); redoing it" in result.stderr


def test_a_second_run_into_a_busy_folder_is_refused_and_a_new_run_clears_the_old_outputs(tmp_path):
    out = tmp_path / "out"
    first = run_cli("run", str(SUBURBAN), "-o", str(out), "--max-frames", "5", "--table-format", "csv", "-q")
    assert first.returncode == 0 and (out / "detections.csv").exists() and (out / "annotated.mp4").exists()
    busy = vidpipe("run", str(SUBURBAN), "-o", str(out), "--no-video", "-q")
    try:
        wait_for(lambda: (out / ".frames.parquet.partial").exists())
        assert not (out / "detections.csv").exists() and not (out / "annotated.mp4").exists()  # old run: gone
        second = run_cli("run", str(PARKING), "-o", str(out), "--max-frames", "3", "-q")
        assert second.returncode == 2 and "being written by another vidpipe run" in one_line(second.stderr)
    finally:
        busy.send_signal(signal.SIGINT)
        busy.communicate(timeout=120)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["name"] == "suburban-traffic"  # the refused run wrote nothing


def test_an_output_folder_that_cannot_be_written_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("run", str(PARKING), "-o", str(blocker / "out"), "--max-frames", "2", "-q")
    assert result.returncode == 1
    assert f"cannot write to {blocker / 'out'}" in one_line(result.stderr)


def test_summary_names_the_audio_codec_not_its_decoder(tmp_path):
    clip = tmp_path / "mp3.mkv"
    with av.open(str(PARKING)) as source, av.open(str(clip), "w") as out:
        video = out.add_stream_from_template(source.streams.video[0])
        audio = out.add_stream("mp3", rate=44100)
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video
                out.mux(packet)
        silence = av.AudioFrame.from_ndarray(np.zeros((1, 1152 * 40), np.int16), format="s16", layout="mono")
        silence.sample_rate = 44100
        for packet in [*audio.encode(silence), *audio.encode(None)]:
            out.mux(packet)
    source = open_source(clip)
    source.close()
    assert source.info.audio_codec == "mp3" and open_source(PARKING).info.audio_codec == "aac"


def test_eval_det_without_labels_or_with_bad_ones_is_a_usage_error(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    frame = next(iter(open_source(PARKING)))
    import cv2

    cv2.imwrite(str(images / "a.jpg"), frame.image)
    result = run_cli("eval", "det", str(images), str(labels), "-q", "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and "has no label file for any image" in one_line(result.stderr)
    (labels / "a.txt").write_text("2 0.5 0.5 0.1\n")  # four numbers, not five
    result = run_cli("eval", "det", str(images), str(labels), "-q", "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and "a.txt, line 1: not a YOLO label line" in one_line(result.stderr)


def test_preview_routes_are_exact_and_idle_clients_are_let_go(monkeypatch):
    import urllib.error
    import urllib.request

    from vidpipe import preview

    monkeypatch.setattr(preview, "IDLE_TIMEOUT_S", 0.5)
    server = preview.PreviewServer("127.0.0.1:0", lambda: {"fps": 1.0})
    try:
        assert json.loads(urllib.request.urlopen(server.url + "stats?x=1", timeout=5).read()) == {"fps": 1.0}
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(server.url + "stats/anything", timeout=5)
        assert error.value.code == 404
        host, port = server.url.split("//")[1].rstrip("/").split(":")
        idle = socket.create_connection((host, int(port)))
        idle.settimeout(5)
        started = time.time()
        assert idle.recv(1) == b""  # the server closed the silent connection...
        assert time.time() - started < 3  # ...after its idle timeout, not never
        idle.close()
    finally:
        server.close()


def test_mot15_ground_truth_is_scored_as_trackeval_scores_mot15(tmp_path):
    """2D MOT 2015's format: 10 columns, -1 for class, visibility and z. A hand-made sequence scores 100
    against itself and less against a shifted copy."""
    pytest.importorskip("trackeval")
    from vidpipe.evaluation import mot
    from vidpipe.evaluation.motchallenge import MotSequence

    sequence = tmp_path / "TUD-Handmade"
    (sequence / "gt").mkdir(parents=True)
    rows = [f"{f},{i},{100 + 40 * i + 3 * f},{50 + f},30,80,1,-1,-1,-1" for f in range(1, 31) for i in (1, 2, 3)]
    (sequence / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    (sequence / "seqinfo.ini").write_text("[Sequence]\nname=TUD-Handmade\nframeRate=25\nseqLength=30\n")
    seq = MotSequence.open(sequence)
    assert seq.benchmark == "MOT15"
    shifted = tmp_path / "shifted.txt"
    shifted.write_text("\n".join(
        ",".join([*r.split(",")[:2], str(int(r.split(",")[2]) + (15 if int(r.split(",")[0]) % 2 else 0)),
                  *r.split(",")[3:]]) for r in rows) + "\n")
    perfect = mot.score([mot.TrackedSequence(seq, sequence / "gt" / "gt.txt", 30, 0.0)]).iloc[0]
    worse = mot.score([mot.TrackedSequence(seq, shifted, 30, 0.0)]).iloc[0]
    assert perfect["HOTA"] == pytest.approx(100) and perfect["MOTA"] == pytest.approx(100)
    assert perfect["IDF1"] == pytest.approx(100)
    assert worse["HOTA"] < 90 and worse["MOTA"] < 100
    (sequence / "det").mkdir()
    (sequence / "det" / "det.txt").write_text("\n".join(rows) + "\n")  # the tracker's input: the true boxes
    cli = run_cli("eval", "mot", str(sequence), "-o", str(tmp_path / "eval"))
    assert cli.returncode == 0 and "Traceback" not in cli.stderr + cli.stdout, cli.stderr


def test_a_rotated_phone_video_is_detected_upright(tmp_path):
    """Frames stored sideways with a display matrix saying "turn 90 degrees": vidpipe detects on the upright
    picture (the same cars as in the upright original), and writes upright tables and video."""
    originals = [f.image for f in open_source(SUBURBAN, Sampling(start=10, max_frames=6))]
    clip = tmp_path / "phone.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 352, 640, "yuv420p"
        stream.set_display_rotation(90)  # players turn the stored frame 90 degrees counter-clockwise
        for i, image in enumerate(originals):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(image, -1)), format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    result = run_cli("run", str(clip), "-o", str(tmp_path / "out"), "--tracker", "none", "-q")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["input"]["rotation"] == 90 and (summary["input"]["width"], summary["input"]["height"]) == (640, 352)
    with av.open(str(tmp_path / "out" / "annotated.mp4")) as written:
        first = next(written.decode(video=0))
        assert (first.width, first.height) == (640, 352) and not first.rotation  # upright, nothing to turn
    from vidpipe.detections import box_iou
    from vidpipe.detectors import load_detector

    upright = load_detector("yolo", conf=0.5).detect(originals)  # the confident boxes of the upright original
    table = pd.read_parquet(tmp_path / "out" / "detections.parquet")
    matched = total = 0
    for index, expected in enumerate(upright):
        ours = table.loc[table["frame"] == index, ["x1", "y1", "x2", "y2"]].to_numpy()
        total += len(expected)
        matched += int((box_iou(expected.xyxy, ours).max(axis=1, initial=0) >= 0.5).sum())
    assert total >= 6 and matched / total >= 0.8, (matched, total)  # re-encoding moves scores a little


def wait_for_file(path, process, timeout: float = 120) -> None:
    """Poll every 2 ms (the finishing takes a few hundred ms), giving up if the run ends first."""
    deadline = time.time() + timeout
    while not path.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    assert path.exists(), f"{path.name} never appeared"


@pytest.mark.parametrize("trigger, stop", [("detections.parquet", signal.SIGINT), ("annotated.mp4", signal.SIGTERM),
                                           ("frames.parquet", signal.SIGHUP)],
                         ids=["ctrl-c-at-the-tables", "sigterm-at-the-video", "sighup-at-the-tables"])
def test_a_stop_while_finishing_lets_every_output_finish(tmp_path, trigger, stop):
    """The stop lands after the last frame, while the outputs are being closed: they all finish, the run is
    complete, and nothing says it was stopped before the first frame."""
    out = tmp_path / "out"
    process = vidpipe("run", str(SUBURBAN), "--max-frames", "400", "-o", str(out), "-q")
    wait_for_file(out / trigger, process)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert "Traceback" not in stderr and "before any frame" not in stderr, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["frames_processed"] == 400, stderr
    assert summary["missing_outputs"] == []
    for name in ("annotated.mp4", "detections.parquet", "frames.parquet", "tracks.parquet", "tracks.txt",
                 "report.html"):
        assert (out / name).exists(), name
    assert len(pd.read_parquet(out / "frames.parquet")) == 400 == len(frame_times(out / "annotated.mp4"))
    assert not list(out.glob(".*.partial"))
    if process.returncode == 0:  # the stop came while finishing (else after it, and says so)
        assert "a stop arrived while finishing: every frame had been processed" in stderr
    else:
        assert process.returncode == 130 and "stopped after the outputs were finished" in stderr


def test_a_second_stop_cuts_only_the_video_and_report_and_the_summary_says_so(tmp_path):
    """Ctrl-C, then Ctrl-C again while the outputs are being finished (x264's slowest preset makes that last):
    the tables and summary.json are finished for the frames processed, the rest is named as missing, and no
    half-written file is left; no generator noise is printed."""
    out = tmp_path / "out"
    process = vidpipe("run", str(SUBURBAN), "--video-preset", "veryslow", "-o", str(out), "-q")
    wait_for(lambda: (out / ".annotated.mp4.partial").exists() and
             (out / ".annotated.mp4.partial").stat().st_size > 10_000)
    process.send_signal(signal.SIGINT)
    # Two signals that land before Python's handler runs are one stop: send the second only once the first
    # has ended the frames (the tables, closed first, exist), while the video (veryslow) is still encoding.
    wait_for_file(out / "detections.parquet", process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr and "before any frame" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    missing = summary["missing_outputs"]
    assert missing and set(missing) <= {"video", "report"} and "report" in missing, summary
    assert f"stopped twice: {', '.join(missing)} not written" in stderr
    assert set(summary["outputs"]) == {"detections", "frames", "tracks", "mot"} | ({"video"} - set(missing))
    assert len(pd.read_parquet(out / "frames.parquet")) == summary["frames_processed"] > 0
    assert not (out / "report.html").exists() and not list(out.glob(".*.partial"))
    assert (out / "annotated.mp4").exists() == ("video" not in missing)


def damaged_copy(path, frames: int, damaged: set[int], out):
    """The first `frames` packets of a clip, those in `damaged` replaced by 50 bytes of garbage (the
    container's timestamps intact): the decoder cannot give those frames."""
    rng = np.random.default_rng(1)
    with av.open(str(path)) as source, av.open(str(out), "w") as target:
        video = source.streams.video[0]
        stream = target.add_stream_from_template(video)
        packets = (p for p in source.demux(video) if p.dts is not None)
        for i, packet in zip(range(frames), packets):
            if i in damaged:
                garbage = av.Packet(rng.integers(0, 256, 50, dtype=np.uint8).tobytes())
                garbage.pts, garbage.dts, garbage.time_base = packet.pts, packet.dts, packet.time_base
                packet = garbage
            packet.stream = stream
            target.mux(packet)
    return out


@pytest.mark.parametrize("limit", [["--max-frames", "50"], ["--end", "3"], []], ids=["max-frames", "end", "whole"])
def test_damaged_frames_in_the_middle_are_counted_wherever_the_run_stops(tmp_path, limit):
    clip = damaged_copy(PARKING, 60, {14, 18, 19, 20}, tmp_path / "damaged.mp4")
    result = run_cli("run", str(clip), *limit, "-o", str(tmp_path / "out"), "--no-video", "--no-report", "-q")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    frames = set(pd.read_parquet(tmp_path / "out" / "frames.parquet")["frame"])
    never = set(range(max(frames) + 1)) - frames
    assert never == {14, 18, 19, 20}
    assert summary["source_frames_lost"] == 4 and "4 frame(s) could not be decoded" in result.stderr


def test_frames_left_unread_are_not_counted_as_damaged(tmp_path):
    """A live run of a file stopped after one second leaves most of the file unread: that is no damage."""
    out = tmp_path / "out"
    result = run_cli("live", str(SUBURBAN), "--duration", "1", "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["source_frames_lost"] == 0 and "could not be decoded" not in result.stderr
    assert summary["source_frames_unread"] == 905 - summary["live"]["frames_captured"]
    source = open_source(SUBURBAN)
    frames = iter(source)
    first = [next(frames) for _ in range(10)]
    frames.close()
    assert len(first) == 10 and source.lost_frames == 0 and source.unread_frames == 895


@pytest.mark.parametrize("command", ["run", "live"])
def test_a_stream_that_changes_size_is_recorded_and_its_lines_follow(tmp_path, command):
    """640x352 for 12 s, then 320x176: the change is logged and recorded, the video keeps its first size (the
    new frames scaled into it), boxes are in the pixels of their own frames, and a line given as fractions
    of the frame still counts after the change."""
    clip = tmp_path / "shrinking.ts"
    clip.write_bytes(shrinking_transport_stream(SUBURBAN, 600, 300))
    out = tmp_path / "out"
    extra = ["--save"] if command == "live" else []
    result = run_cli(command, str(clip), "--line", "mid=0,0.55,1,0.55", *extra, "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert "the frame size changed from 640x352 to 320x176" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    (change,) = summary["input"]["size_changes"]
    assert change["width"] == 320 and change["height"] == 176 and change["frame"] >= 300
    assert (summary["input"]["width"], summary["input"]["height"]) == (640, 352)
    with av.open(str(out / "annotated.mp4")) as video:
        assert {(f.width, f.height) for f in video.decode(video=0)} == {(640, 352)}
    detections = pd.read_parquet(out / "detections.parquet")
    after = detections[detections["frame"] >= change["frame"]]
    assert len(after) and after["x2"].max() <= 320.5 and after["y2"].max() <= 176.5
    if command == "run":  # every frame seen: cars cross the line after the change too
        events = pd.read_parquet(out / "events.parquet")
        assert (events["frame"] > change["frame"]).any() and (events["frame"] < change["frame"]).any()


def test_batch_workers_leak_no_semaphore_and_end_with_a_killed_parent(tmp_path):
    """Two worker processes: a clean run, a run stopped by Ctrl-C to the whole process group (as a terminal
    sends it) and its resume print no leaked-semaphore warning; after `kill -9` of the parent, its workers
    end too, without a traceback, and the semaphores the parent left are removed without a warning."""
    import os

    import psutil

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b", "c", "d"):
        shutil.copy(PARKING, folder / f"{name}.mp4")
    command = [sys.executable, "-m", "vidpipe", "batch", str(folder), "--workers", "2", "--max-frames", "150",
               "--no-video", "--no-report", "-q"]

    def start(out):
        return subprocess.Popen([*command, "-o", str(out)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)

    stopped = start(tmp_path / "stopped")
    wait_for(lambda: any((tmp_path / "stopped" / "videos").glob("*/.frames.parquet.partial")))
    os.killpg(stopped.pid, signal.SIGINT)
    _, stderr = stopped.communicate(timeout=120)
    assert stopped.returncode == 130 and "leaked semaphore" not in stderr and "Traceback" not in stderr, stderr
    resumed = start(tmp_path / "stopped")
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0 and "leaked semaphore" not in stderr, stderr

    semaphores = set(Path("/dev/shm").glob("sem.mp-*"))
    killed = start(tmp_path / "killed")
    wait_for(lambda: any((tmp_path / "killed" / "videos").glob("*/.frames.parquet.partial")))
    workers = psutil.Process(killed.pid).children(recursive=True)
    killed.kill()
    _, stderr = killed.communicate(timeout=60)
    psutil.wait_procs(workers, timeout=20)
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr and "leaked semaphore" not in stderr, stderr
    assert set(Path("/dev/shm").glob("sem.mp-*")) <= semaphores  # removed all the same, by multiprocessing's tracker

"""Many cameras: one `vidpipe live` process with N cameras against N separate `vidpipe live` processes.

Each camera is a `--realtime --loop` copy of the 720p sample (the quickstart clip scaled to 1280x720, at its
own 24 fps), so every camera delivers frames as a real one would, dropped frames and all. For N = 1, 2
and 4 (`--cameras`) both set-ups run for `--seconds`, one after the other, on the same machine; the bench
prints, per camera, frames processed a second, frames dropped and latency p50/p95 (capture to annotated
frame), the total, and the peak memory of each set-up (RSS summed over its processes, sampled every 50 ms).

Targets with 4 cameras: total processed fps at least 1.15x the separate processes', every camera within 10%
of the mean (fair), latency p95 (the worst camera's) no worse, peak RSS at most half.

    python bench/cameras.py [--seconds 30] [--cameras 1 2 4] [--clip PATH] [-- extra vidpipe live options]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import psutil
from machine import describe, tool

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_videos" / "suburban-traffic.mp4"


def scaled_copy(source: Path, path: Path, size=(1280, 720)) -> Path:
    """`source` scaled to `size` as H.264 at its own frame rate (a 720p camera's worth of decoding)."""
    with av.open(str(source)) as container, av.open(str(path), "w") as out:
        rate = container.streams.video[0].average_rate
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for i, frame in enumerate(container.decode(video=0)):
            image = cv2.resize(frame.to_ndarray(format="bgr24"), size, interpolation=cv2.INTER_LINEAR)
            scaled = av.VideoFrame.from_ndarray(image, format="bgr24")
            scaled.pts = i
            for packet in stream.encode(scaled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def watch(processes: list[subprocess.Popen]) -> float:
    """Wait for the processes; their peak summed RSS in MB, sampled every 50 ms."""
    peak = 0
    roots = [psutil.Process(p.pid) for p in processes]
    while any(p.poll() is None for p in processes):
        rss = 0
        for root in roots:
            try:
                rss += sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            except psutil.Error:
                pass
        peak = max(peak, rss)
        time.sleep(0.05)
    for p in processes:
        if p.returncode:
            raise RuntimeError(f"{' '.join(p.args)} failed:\n{p.stderr.read()[-3000:]}")
    return peak / 1e6


def figures(summary: dict) -> dict:
    """One camera's figures from its summary.json."""
    live = summary["live"]
    return {"fps": summary["frames_processed"] / summary["wall_time_s"], "dropped": live["frames_dropped"],
            "p50": live["latency_ms"]["p50"], "p95": live["latency_ms"]["p95"]}


def shared(clip: Path, n: int, seconds: float, out: Path, extra: list[str]) -> tuple[list[dict], float]:
    command = [tool("vidpipe"), "live", *[f"cam{i}={clip}" for i in range(n)], "--realtime", "--loop",
               "--duration", str(seconds), "-o", str(out), "-q", *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = watch([process])
    gathered = json.loads((out / "summary.json").read_text())
    if "cameras" not in gathered:  # one camera is a one-camera run
        return [figures(gathered)], peak
    return [figures(c["summary"]) for c in gathered["cameras"].values()], peak


def separate(clip: Path, n: int, seconds: float, out: Path, extra: list[str]) -> tuple[list[dict], float]:
    processes = [subprocess.Popen([tool("vidpipe"), "live", str(clip), "--realtime", "--loop", "--duration",
                                   str(seconds), "-o", str(out / f"cam{i}"), "-q", *extra],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(n)]
    peak = watch(processes)
    return [figures(json.loads((out / f"cam{i}" / "summary.json").read_text())) for i in range(n)], peak


def show(label: str, cameras: list[dict], peak: float) -> dict:
    total = sum(c["fps"] for c in cameras)
    mean = total / len(cameras)
    spread = max(abs(c["fps"] - mean) / mean for c in cameras) if mean else 0.0
    worst_p95 = max(c["p95"] for c in cameras)
    for i, c in enumerate(cameras):
        print(f"  {label:<9} cam{i}: {c['fps']:5.1f} fps processed, {c['dropped']:5d} dropped, latency p50 "
              f"{c['p50']:4.0f} ms, p95 {c['p95']:4.0f} ms")
    print(f"  {label:<9} total {total:5.1f} fps; fairness: every camera within {100 * spread:.1f}% of the mean; "
          f"worst p95 {worst_p95:.0f} ms; peak RSS {peak:.0f} MB")
    return {"total": total, "spread": spread, "p95": worst_p95, "rss": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--clip", type=Path, help="a clip to use as is [default: the quickstart clip at 720p]")
    parser.add_argument("extra", nargs="*", help="more `vidpipe live` options for both set-ups (after --)")
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = args.clip or scaled_copy(SAMPLE, tmp / "traffic-720p.mp4")
        with av.open(str(clip)) as container:
            video = container.streams.video[0]
            print(f"clip: {clip.name}, {video.width}x{video.height} at {float(video.average_rate):.2f} fps, "
                  f"--realtime --loop, {args.seconds:g} s per set-up")
        for n in args.cameras:
            print(f"\n{n} camera(s)")
            one = show("shared", *shared(clip, n, args.seconds, tmp / f"shared{n}", args.extra))
            many = show("separate", *separate(clip, n, args.seconds, tmp / f"separate{n}", args.extra))
            print(f"  shared / separate: total fps {one['total'] / many['total']:.2f}x (target >= 1.15), worst p95 "
                  f"{one['p95'] / many['p95']:.2f}x (target <= 1), peak RSS {one['rss'] / many['rss']:.2f}x "
                  f"(target <= 0.5); shared fairness {100 * one['spread']:.1f}% (target <= 10%)")
            sys.stdout.flush()


if __name__ == "__main__":
    main()

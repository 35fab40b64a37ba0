"""Sampled decoding: what 1 fps (YouTube-8M style) costs to decode, decoding every frame against decoding only
what the kept frames need (vidpipe's default), on files made here from a sample clip.

The files: 720p and 1080p, GOPs of 2 s and 5 s, H.264 with x264's B-frames (veryfast, 30 fps), and VP9.
For each, both methods read the same file with `--sample-fps 1`; the bench checks that they give the same
frames (index, timestamp, pixels) and prints the decode CPU (process time, every decoder thread counted,
conversion to BGR included), the wall time (each the least of three reads) and the pictures decoded. Then a
corpus end to end: `vidpipe batch --pipeline yt8m` on the 720p 2 s files, both ways, in videos per hour.

    python bench/sampling.py [--seconds 60] [--clips 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
from machine import describe

from vidpipe.sources import Sampling, VideoSource

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "sample_videos" / "suburban-traffic.mp4"
FILES = [("720p-2s-h264", (1280, 720), 60, "libx264"), ("720p-5s-h264", (1280, 720), 150, "libx264"),
         ("1080p-2s-h264", (1920, 1080), 60, "libx264"), ("1080p-5s-h264", (1920, 1080), 150, "libx264"),
         ("720p-2s-vp9", (1280, 720), 60, "libvpx-vp9")]


def make(path: Path, size: tuple[int, int], gop: int, codec: str, seconds: float) -> Path:
    """`seconds` of the traffic clip at 30 fps, scaled to `size`, with a keyframe every `gop` frames."""
    frames = [f.to_ndarray(format="rgb24") for f in av.open(str(SOURCE)).decode(video=0)]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.options = {"preset": "veryfast", "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        else:
            stream.options = {"deadline": "realtime", "cpu-used": "8", "g": str(gop), "keyint_min": str(gop)}
        for n in range(int(seconds * 30)):
            image = av.VideoFrame.from_ndarray(cv2.resize(frames[n % len(frames)], size), format="rgb24")
            for packet in stream.encode(image):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def read(path: Path, exact: bool, repeats: int = 3) -> tuple[list, float, float, int]:
    """The frames kept at 1 fps (index, time, a hash of the pixels: an untimed pass), and the least CPU and
    wall time of `repeats` timed reads (the noise is one-sided), decoding and conversion to BGR included."""
    source = VideoSource(str(path), Sampling(sample_fps=1))
    source.exact_skipping = exact
    frames = [(f.index, f.time, hashlib.md5(f.image.tobytes()).hexdigest()) for f in source]
    source.close()
    best_cpu = best_wall = float("inf")
    for _ in range(repeats):
        source = VideoSource(str(path), Sampling(sample_fps=1))
        source.exact_skipping = exact
        cpu, wall = time.process_time(), time.perf_counter()
        for _frame in source:
            pass
        best_cpu, best_wall = min(best_cpu, time.process_time() - cpu), min(best_wall, time.perf_counter() - wall)
        decoded = source.decoded_frames
        source.close()
    return frames, best_cpu, best_wall, decoded


def read_keyframes(path: Path) -> tuple[float, int, float]:
    """--sample-mode keyframes at 1 fps: the least CPU of three reads, frames got, mean |time - target|."""
    best = float("inf")
    for _ in range(3):
        source = VideoSource(str(path), Sampling(sample_fps=1, sample_mode="keyframes"))
        cpu = time.process_time()
        frames = [(f.time, f.target_s) for f in source]
        best = min(best, time.process_time() - cpu)
        source.close()
    return best, len(frames), sum(abs(t - target) for t, target in frames) / max(len(frames), 1)


def corpus(clips: list[Path], out: Path, workers: int, exact: bool) -> float:
    """Wall seconds for `vidpipe batch --pipeline yt8m` on `clips`."""
    listing = out.with_suffix(".txt")
    listing.write_text("\n".join(str(c) for c in clips) + "\n")
    env = {**os.environ, "VIDPIPE_DECODE_EVERY_FRAME": "" if exact else "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vidpipe", "batch", str(listing), "-o", str(out), "--pipeline", "yt8m",
                    "--workers", str(workers), "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="length of each file made")
    parser.add_argument("--clips", type=int, default=10, help="720p 2 s GOP files in the corpus run (0: none)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        keyframes = []
        print(f"{'file':<15} {'decode CPU s: every':>20} {'exact':>7} {'ratio':>6}   {'wall s: every':>14} "
              f"{'exact':>6}   {'decoded: every':>14} {'exact':>6}  same frames")
        for name, size, gop, codec in FILES:
            path = make(folder / f"{name}.{'webm' if 'vp9' in codec else 'mp4'}", size, gop, codec, args.seconds)
            every, cpu_all, wall_all, decoded_all = read(path, exact=False)
            sampled, cpu, wall, decoded = read(path, exact=True)
            print(f"{name:<15} {cpu_all:>20.2f} {cpu:>7.2f} {cpu_all / cpu:>5.2f}x   {wall_all:>14.2f} {wall:>6.2f}   "
                  f"{decoded_all:>14} {decoded:>6}  {'yes' if every == sampled else 'NO'}"
                  f"  ({100 * decoded / decoded_all:.0f}% of the pictures)")
            keyframes.append((name, cpu_all, *read_keyframes(path), len(every)))
        print("\n--sample-mode keyframes (approximate): decode CPU, frames got for the 1 fps slots, their mean "
              "distance from the slot's start")
        for name, cpu_all, cpu, got, distance, slots in keyframes:
            print(f"  {name:<15} {cpu:6.2f} s ({cpu_all / cpu:5.1f}x less than decoding every frame), {got} frames "
                  f"for {slots} slots, {distance:.2f} s from their slot")
        if args.clips:
            first = folder / "720p-2s-h264.mp4"
            clips = [first] + [shutil.copy(first, folder / f"clip{i:02d}.mp4") for i in range(1, args.clips)]
            clips = [Path(c) for c in clips]
            hours = len(clips) * args.seconds / 3600
            before = corpus(clips, folder / "every", args.workers, exact=False)
            after = corpus(clips, folder / "exact", args.workers, exact=True)
            print(f"\nvidpipe batch --pipeline yt8m --workers {args.workers}, {len(clips)} clips of "
                  f"{args.seconds:.0f} s (720p, 2 s GOPs):")
            for label, wall in (("decoding every frame", before), ("sampled decoding", after)):
                print(f"  {label:<22} {wall:6.1f} s wall, {len(clips) / wall * 3600:7.0f} videos/hour, "
                      f"{hours * 3600 / wall:5.1f}x real time")
            print(f"  ratio {before / after:.2f}x")


if __name__ == "__main__":
    main()

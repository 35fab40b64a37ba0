"""Corpus mode: many videos, each processed once, resumably, on local worker processes or on Ray.

`OUT/videos/<video_id>/` gets what `vidpipe run` writes, plus `segments.parquet`, and `_SUCCESS` last
(atomically): a video is done only when that marker exists. At corpus level, `OUT/detections/`,
`OUT/frames/`, `OUT/tracks/` and `OUT/segments/` are Parquet datasets with one file per video and a
`video_id` string column, one schema for every video (one `pandas.read_parquet` reads each), and
`OUT/videos.parquet` has one row per video: status, facts, counts, error. A re-run skips done videos and
redoes the rest, so a killed job resumed ends with every video done exactly once; a video that fails is
recorded and the others go on.
"""

from __future__ import annotations

import csv
import ctypes
import glob
import json
import logging
import math
import multiprocessing
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from .config import PipelineConfig
from .errors import InputError, VidpipeError
from .files import locked, write_atomic
from .pipeline import Pipeline
from .report import write_corpus_report
from .segments import YT8M_SEGMENT_SECONDS, presence_schema, presence_table, seconds_present, segment_table
from .session import frame_classes, zone_columns
from .sinks import (
    EVENT_SCHEMA,
    TRACK_SCHEMA,
    VISIT_SCHEMA,
    column_name,
    detection_schema,
    frame_schema,
    read_arrow,
    write_arrow,
    write_table,
)
from .sources import check_named, natural_key, stem
from .stopping import frame_boundary
from .summary import RunSummary

log = logging.getLogger("vidpipe")
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv",
                            ".wmv", ".3gp"})
MARKER = "_SUCCESS"
ERROR = "error.json"
DATASETS = ("detections", "frames", "tracks", "events", "visits", "segments", "presence")  # one file per video
# videos.parquet's integer columns. Frame counts name their unit: frames_processed are the frames kept (after
# sampling); frames_decoded and source_frames_* count the input's own frames.
WHOLE_NUMBERS = ("frames_processed", "frames_decoded", "width", "height", "source_frames_expected",
                 "source_frames_lost", "detections", "tracks", "source_size", "source_mtime_ns")
# the names an earlier vidpipe gave in a video's marker (a corpus it began is resumed under today's names)
RENAMED = {"frames": "frames_processed", "frames_lost": "source_frames_lost",
           "frames_expected": "source_frames_expected"}
EXECUTORS = ("local", "ray")
RAY_SESSION_TRIES = 3  # a Ray cluster that fails to start this client's session is asked this many times
RAY_SESSION_PAUSE_S = 1.0
PR_SET_PDEATHSIG = 1  # Linux prctl: the signal a process gets when its parent dies


@dataclass(frozen=True)
class CorpusItem:
    video_id: str
    uri: str


def collect(inputs: Sequence[str]) -> list[CorpusItem]:
    """Videos named by folders, globs, manifests (.csv/.txt) or paths/URLs, with unique, safe video ids.

    A path that does not exist is kept: it is recorded as a failed video rather than stopping the corpus.
    """
    entries: list[tuple[str | None, str]] = []
    for text in inputs:
        path = Path(check_named(text))
        if path.is_file() and path.suffix.lower() in (".csv", ".txt"):
            entries += read_manifest(path)
        elif path.is_dir():
            entries += [(None, str(p)) for p in sorted(path.rglob("*"), key=lambda p: natural_key(str(p)))
                        if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()]
        elif glob.has_magic(text):
            entries += [(None, p) for p in sorted(glob.glob(text, recursive=True), key=natural_key)
                        if Path(p).suffix.lower() in VIDEO_SUFFIXES]
        else:
            entries.append((None, text))
    if not entries:
        raise InputError(f"no videos found in {', '.join(inputs)}")
    repeated = [uri for (_, uri), n in Counter(entries).items() if n > 1]
    if repeated:  # documented: each is processed once per listing, as `id`, `id-2`, ...
        log.warning("%d video(s) listed more than once are each processed once per listing: %s", len(repeated),
                    ", ".join(repeated[:3]) + (", ..." if len(repeated) > 3 else ""))
    items, taken = [], set()
    for video_id, uri in entries:
        base = sanitize_id(video_id or stem(uri))
        unique, n = base, 1
        while unique in taken:  # two inputs, one id: the later one gets a suffix, never the same folder
            n += 1
            unique = f"{base}-{n}"
        taken.add(unique)
        items.append(CorpusItem(unique, uri))
    return items


def read_manifest(path: Path) -> list[tuple[str | None, str]]:
    """(video_id or None, path or URL) per line. CSV: a `path`/`url`/`uri` column (else the first one) and
    an optional `video_id` column; TXT: one path or URL per line, `#` comments. Relative paths are relative
    to the manifest."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel saves CSV as UTF-8 with a byte-order mark
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a text manifest (it is not UTF-8 text)") from None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if path.suffix.lower() == ".txt":
        rows = [(None, line.strip()) for line in lines]
    else:
        reader = list(csv.reader(lines))
        header = [h.strip().lower() for h in reader[0]] if reader else []
        location = next((header.index(h) for h in ("path", "url", "uri") if h in header), None)
        if location is None:
            raise InputError(f"{path}: a CSV manifest needs a header with a path (or url) column, e.g. "
                             f"`path,video_id`; its first line is {lines[0][:80]!r}" if lines else
                             f"{path} is an empty manifest")
        ident = header.index("video_id") if "video_id" in header else None
        rows = [(_cell(row, ident) or None, _cell(row, location)) for row in reader[1:] if row]
        missing = [n for n, (_, uri) in enumerate(rows, start=2) if not uri]
        if missing:
            raise InputError(f"{path}: row {missing[0]} has no {header[location]}")
    return [(video_id, uri if "://" in uri or Path(uri).is_absolute() else str(path.parent / uri))
            for video_id, uri in rows]


def _cell(row: list[str], column: int | None) -> str:
    return row[column].strip() if column is not None and column < len(row) else ""


def sanitize_id(raw: str) -> str:
    """A video id usable as one folder name: letters, digits, `_`, `-`, `.`; no separators, no `..`, no
    leading dot, at most 128 characters (YouTube ids, 11 of [A-Za-z0-9_-], pass unchanged)."""
    text = re.sub(r"[^A-Za-z0-9_.-]", "_", raw.strip())
    text = re.sub(r"\.{2,}", "_", text).strip(".")
    return text[:128] or "video"


class VideoProcessor:
    """Processes corpus videos with one loaded model: what each local worker or Ray actor holds."""

    def __init__(self, config: PipelineConfig, out_dir: str | Path,
                 segment_seconds: float = YT8M_SEGMENT_SECONDS) -> None:
        self.pipeline = Pipeline(config)
        self.out_dir = Path(out_dir)
        self.segment_seconds = segment_seconds
        names = self.pipeline.detector.names
        counted, interest = frame_classes(config, names)
        self.count_names = [names[c] for c in counted]  # videos.parquet's n_<class> columns: the same for all
        target = config.slotted  # each frame stands for a sampling slot: say which
        self.schemas = {"detections": detection_schema(target), "tracks": TRACK_SCHEMA, "events": EVENT_SCHEMA,
                        "visits": VISIT_SCHEMA, "presence": presence_schema(target),
                        "frames": frame_schema(names, counted, interest, config.top_k,
                                               extra_columns=zone_columns(config), target=target)}

    def __call__(self, item: CorpusItem, progress: Callable[[int], None] | None = None) -> dict:
        folder = _video_folder(self.out_dir, item.video_id)
        for stale in (folder / MARKER, folder / ERROR, *(_partition(self.out_dir, d, item.video_id) for d in DATASETS)):
            stale.unlink(missing_ok=True)  # from here until the marker, this video is not done
        start = time.perf_counter()
        identity = source_identity(item.uri)  # before processing: a file replaced meanwhile is redone next time
        try:
            result = self.pipeline.run(item.uri, folder, progress=progress or False, name=item.video_id)
            if result.interrupted:
                raise KeyboardInterrupt
            tables = {name: read_arrow(result.outputs[name], schema) for name, schema in self.schemas.items()
                      if name in result.outputs}
            detections, frames = tables["detections"].to_pandas(), tables["frames"].to_pandas()
            derived = {"segments": segment_table(item.video_id, detections, frames, self.segment_seconds)}
            if "presence" not in tables:  # a sampled run wrote it already
                derived["presence"] = presence_table(item.video_id, detections)
            for name, table in derived.items():
                write_table(table, folder / f"{name}.parquet", "parquet")
                tables[name] = pa.Table.from_pandas(table, preserve_index=False)
            present = seconds_present(frames, self.count_names, result.summary.end_s)
            for name, table in tables.items():  # the corpus datasets: video_id first, a string in every reader
                write_arrow(table.rename_columns(["video_id" if c == "video" else c for c in table.column_names]),
                            _partition(self.out_dir, name, item.video_id), "parquet")
            # the video's own status (partial: cut short or damaged, what could be read is processed)
            record = _record(item, result.summary.status, time.perf_counter() - start, result.summary,
                             self.count_names, present)
            _write_json(folder / MARKER, {**record, "source": identity})  # last: the video is done
            if result.stop_received:  # a stop while this video was finishing: it is done, the corpus stops
                raise KeyboardInterrupt
        except Exception as exc:  # noqa: BLE001 - one bad video must not stop the corpus
            message = str(exc) if isinstance(exc, VidpipeError) else f"{type(exc).__name__}: {exc}"
            record = _record(item, "error", time.perf_counter() - start, error=message)
            _write_json(folder / ERROR, record)
        return record


def run_batch(inputs: Sequence[str], out_dir: str | Path, config: PipelineConfig | None = None, *,
              workers: int = 1, executor: str = "local", force: bool = False,
              segment_seconds: float = YT8M_SEGMENT_SECONDS, progress: bool = True,
              ray_address: str | None = None, num_cpus: float = 1, num_gpus: float = 0,
              partial_is_error: bool = False) -> pd.DataFrame:
    """Process every video not done yet; return (and write as OUT/videos.parquet) one row per video.

    A video that lost frames (cut short, damaged) is `partial`; with `partial_is_error` it is an error
    instead, and tried again by the next run. A stop signal abandons the videos under way (they stay
    pending) and still writes the table; `table.attrs["interrupted"]` says so."""
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r} (use {' or '.join(EXECUTORS)})")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if not (math.isfinite(segment_seconds) and segment_seconds > 0):
        raise InputError(f"--segment-seconds must be a positive number, got {segment_seconds}")
    config = config or PipelineConfig()
    out = Path(out_dir)
    items = collect(inputs)
    with locked(out):  # one batch at a time in a corpus folder
        return _run_batch(items, config, out, workers, executor, force, segment_seconds, progress, ray_address,
                          num_cpus, num_gpus, partial_is_error)


def _run_batch(items: list[CorpusItem], config: PipelineConfig, out: Path, workers: int, executor: str,
               force: bool, segment_seconds: float, progress: bool, ray_address: str | None, num_cpus: float,
               num_gpus: float, partial_is_error: bool) -> pd.DataFrame:
    todo = [item for item in items if force or not _done(out, item, partial_is_error)]
    if len(todo) < len(items):
        log.info("%d of %d videos already done (--force redoes them)", len(items) - len(todo), len(items))
    interrupted = False
    try:
        with _CorpusProgress(todo, progress) as bar:
            if executor == "ray":
                records = _run_ray(todo, config, out, segment_seconds, workers, ray_address, num_cpus, num_gpus)
            else:
                records = _run_local(todo, config, out, segment_seconds, workers, bar.queue)
            for record in records:
                bar.video_done(record, count_frames=executor == "ray")
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the video under way is abandoned and stays pending
        interrupted = True
        log.warning("interrupted: videos under way stay pending; the same command resumes")
    with frame_boundary():  # a second stop signal waits until the table is written
        table = videos_table(items, out, partial_is_error)
        write_table(table, out / "videos.parquet", "parquet")
        if config.report:
            tracks = list((out / "tracks").glob("*.parquet"))
            write_corpus_report(out / "report.html", table, pd.read_parquet(out / "tracks") if tracks else None)
    table.attrs["interrupted"] = interrupted
    return table


def source_identity(uri: str) -> dict:
    """What a video id pointed to when it was done: the file's path, size and modification time (a URL: its
    address), so a manifest that now maps the id to other content is noticed."""
    path = Path(uri)
    if "://" in uri or not path.is_file():
        return {"uri": uri}
    stat = path.stat()
    return {"uri": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _done(out: Path, item: CorpusItem, partial_is_error: bool = False) -> bool:
    """Done, and done from the same source: a video whose id now names other content is redone (as is a
    partial one, with `partial_is_error`)."""
    marker = _video_folder(out, item.video_id) / MARKER
    if not marker.is_file():
        return False
    done = json.loads(marker.read_text())
    if partial_is_error and done.get("status") == "partial":
        return False
    recorded, now = done.get("source") or {}, source_identity(item.uri)
    if recorded != now:
        if recorded.get("uri") == now.get("uri"):
            change = "its file changed since it was processed (size or modification time)"
        else:
            change = f"it now names {item.uri}, not {recorded.get('uri', 'what was processed before')}"
        log.warning("%s: %s; redoing it", item.video_id, change)
        return False
    return True


def videos_table(items: Sequence[CorpusItem], out: Path, partial_is_error: bool = False) -> pd.DataFrame:
    """One row per video from what is on disk: complete or partial (marker: the status its summary.json
    gives), error (error record) or pending."""
    rows = []
    for item in items:
        folder = _video_folder(out, item.video_id)
        for name in (MARKER, ERROR):
            if (folder / name).is_file():
                row = _current(json.loads((folder / name).read_text()))
                if partial_is_error and row["status"] == "partial":
                    row = {**row, "status": "error", "error": f"partial: {row['source_frames_lost']} source frame(s) "
                                                              f"could not be read of {row['source_frames_expected']} "
                                                              f"expected"}
                rows.append(row)
                break
        else:
            rows.append(_record(item, "pending", 0.0))
    table = pd.json_normalize(rows, sep="_")
    counts = sorted(c for c in table.columns if c.startswith("n_"))
    present = sorted(c for c in table.columns if c.startswith("s_"))
    table[counts] = table[counts].fillna(0).astype("int64")
    table[present] = table[present].fillna(0.0).astype("float64")
    for column in ("video_id", "uri", "status", "error"):
        table[column] = table[column].astype("string")
    for column in WHOLE_NUMBERS:  # never doubles, missing or not (a pending video has no size yet)
        if column in table:
            table[column] = table[column].astype("Int64")
    return table[[c for c in table.columns if c not in counts + present] + counts + present]


def _current(row: dict) -> dict:
    """A marker or error record with today's column names and statuses (an earlier vidpipe said `done`)."""
    row = {RENAMED.get(key, key): value for key, value in row.items()}
    return {**row, "status": "complete"} if row["status"] == "done" else row


def _record(item: CorpusItem, status: str, seconds: float, summary: RunSummary | None = None,
            count_names: Sequence[str] = (), present: dict[str, float] | None = None,
            error: str | None = None) -> dict:
    source, counts = (summary.input, summary.counts) if summary else (None, None)
    expected = None
    if source is not None:
        expected = source.frame_count or (round(source.duration * source.fps) if source.duration else None)
    return {
        **asdict(item),
        "status": status,
        "frames_processed": counts.frames_processed if counts else 0,
        "frames_decoded": summary.frames_decoded if summary else None,
        "duration_s": source.duration if source else None,
        "fps": source.fps if source else None,
        "width": source.width if source else None,
        "height": source.height if source else None,
        "source_frames_lost": summary.source_frames_lost if summary else 0,
        "source_frames_expected": expected,
        "detections": counts.detections if counts else 0,
        "tracks": counts.tracks if counts else 0,
        "processing_s": round(seconds, 3),
        "error": error,
        **{f"n_{column_name(name)}": (counts.detections_per_class or {}).get(name, 0) if counts else 0
           for name in count_names},
        **{f"s_{column_name(name)}": (present or {}).get(name, 0.0) for name in count_names},
    }


def _video_folder(out: Path, video_id: str) -> Path:
    """`OUT/videos/<id>/`: below a folder of their own, no id can collide with a corpus-level file."""
    folder = out / "videos" / video_id
    if folder.resolve().parent != (out / "videos").resolve():  # sanitize_id makes this impossible; keep it so
        raise InputError(f"video id {video_id!r} would write outside {out}")
    return folder


def _partition(out: Path, dataset: str, video_id: str) -> Path:
    """One file per video in each dataset folder. Not a hive `video_id=` folder: readers would guess the
    type of an id like `0123` from the folder name and make it the number 123. The `part-` prefix keeps an
    id that starts with `_` (YouTube ids may) from being skipped as a hidden file."""
    return out / dataset / f"part-{video_id}.parquet"


def _write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def _with_thread_budget(config: PipelineConfig, cores: int) -> PipelineConfig:
    """The config a worker runs: each library's threads capped to the worker's share of the cores, unless
    the user set a cap."""
    return config if config.threads else replace(config, threads=max(1, cores))


# --- local worker processes ---------------------------------------------------------------------------

_WORKER: VideoProcessor | None = None
_PROGRESS = None


def _run_local(items: list[CorpusItem], config: PipelineConfig, out: Path, segment_seconds: float, workers: int,
               progress_queue) -> Iterator[dict]:
    if not items:
        return
    if workers == 1:
        processor = VideoProcessor(config, out, segment_seconds)
        for item in items:
            yield processor(item, progress=progress_queue.put if progress_queue else None)
        return
    worker_config = _with_thread_budget(config, (os.cpu_count() or 1) // workers)  # N workers never oversubscribe
    _start_quiet_resource_tracker()
    context = multiprocessing.get_context("spawn")  # safe with the threads of decoders and runtimes
    # Workers start with Ctrl-C ignored (an ignored signal stays ignored across exec, and Python then leaves it
    # so): one still importing vidpipe when the terminal's Ctrl-C reaches the process group would otherwise
    # print a KeyboardInterrupt traceback. The parent ignores it only while it starts them.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pool = context.Pool(workers, initializer=_init_worker,
                            initargs=(worker_config, str(out), segment_seconds, progress_queue))
    finally:
        signal.signal(signal.SIGINT, previous)
    with pool:
        yield from pool.imap_unordered(_process_in_worker, items)


def _start_quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker, the process that removes the pool's named semaphores once their
    owner is gone, without its "leaked semaphore objects" warning. After `kill -9` of the parent that cleanup is
    exactly its job, done, and the warning on the terminal would only alarm. (The tracker inherits the parent's
    `-W` options when it starts; it starts once per process, so this must come before any pool or queue.)"""
    from multiprocessing import resource_tracker

    quiet = "ignore:resource_tracker:UserWarning"
    sys.warnoptions.append(quiet)
    try:
        resource_tracker.ensure_running()
    finally:
        sys.warnoptions.remove(quiet)


def _init_worker(config: PipelineConfig, out: str, segment_seconds: float, progress_queue) -> None:
    global _WORKER, _PROGRESS
    _worker_process()
    # The parent killed, Linux closes its end of the result pipe a moment before the parent-death signal
    # arrives: a worker sending its result then ends at once, as Unix tools do, not with a BrokenPipeError traceback.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    _WORKER = VideoProcessor(config, out, segment_seconds)  # the model loads once per worker
    _PROGRESS = progress_queue


def _worker_process() -> None:
    """Settings for a process that only works for a corpus run (a local worker, a Ray actor)."""
    # tqdm makes a multiprocessing lock (a named semaphore) on its first bar, even a disabled one; a worker
    # ended by its pool never releases it, and Python warns of a leaked semaphore. Workers show no bars.
    tqdm.set_lock(threading.RLock())
    # Ctrl-C reaches the terminal's whole process group: the parent stops the batch and ends its workers, which
    # must not each print a KeyboardInterrupt traceback (cut off half-way when the pool ends them). (A local
    # worker already starts with it ignored; a Ray actor does not.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):  # a worker whose parent is killed (even kill -9) ends with it, quietly
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _process_in_worker(item: CorpusItem) -> dict:
    pending = [0, time.monotonic()]

    def report(frames: int) -> None:  # batched: one message per half second, not per frame
        pending[0] += frames
        if time.monotonic() - pending[1] > 0.5:
            _PROGRESS.put(pending[0])
            pending[:] = [0, time.monotonic()]

    if _PROGRESS is None:  # no progress display: nothing to report
        return _WORKER(item)
    record = _WORKER(item, progress=report)
    _PROGRESS.put(pending[0])
    return record


# --- Ray ----------------------------------------------------------------------------------------------

def _run_ray(items: list[CorpusItem], config: PipelineConfig, out: Path, segment_seconds: float, workers: int,
             address: str | None, num_cpus: float, num_gpus: float) -> Iterator[dict]:
    client = bool(address and address.startswith("ray://"))
    if client:
        _send_ray_token()
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise InputError("--engine ray needs Ray: pip install 'vidpipe[ray]'") from None
    if not items:
        return
    if not ray.is_initialized():
        _check_reachable(address)
        _ray_init(ray, address, client)
    actor_config = _with_thread_budget(config, int(num_cpus))
    actor = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(_RayVideoProcessor)
    actors = [actor.remote(actor_config, str(out), segment_seconds) for _ in range(min(workers, len(items)))]
    yield from ActorPool(actors).map_unordered(lambda a, item: a.process.remote(item), items)


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """A `ray://HOST:PORT` that nothing answers on fails in seconds with the reason, not after Ray's 30 s wait."""
    if not address or not address.startswith("ray://"):
        return
    host, _, port = address.removeprefix("ray://").rstrip("/").rpartition(":")
    if not port.isdigit():
        raise InputError(f"--address takes auto or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise VidpipeError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} (is `ray start "
                           f"--head --ray-client-server-port {port}` running there?)") from None


def _ray_init(ray, address: str | None, client: bool) -> None:
    """`ray.init`, keeping vidpipe's stop handling (Ray would make SIGTERM exit at once), with a hint about
    token authentication where a client connection (`ray://`) times out.

    A cluster that answers but fails to start this client's session is asked again: Ray's client proxier
    starts one server process per client and now and then loses it as it starts (the process ends at once,
    or is gone when the proxier reads its command line: ray/util/client/server/proxier.py). Seen on 2 of
    about 50 connections on a busy 2-core machine; a new connection gets a new process."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    # "SIGTERM handler is not set because current thread is not the main thread": Ray says so here, or its
    # client server says so and the client logs it again; not the user's concern (vidpipe handles the stops)
    for name in ("ray._private.worker", "ray.util.client.logsclient"):
        logging.getLogger(name).addFilter(_not_rays_sigterm_note)  # once, however many runs
    try:
        for attempt in range(1, RAY_SESSION_TRIES + 1):
            try:
                ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
                return
            except ConnectionAbortedError as exc:  # Ray's client: "Initialization failure from server" + traceback
                reason = str(exc).strip().splitlines()[-1]
                if attempt == RAY_SESSION_TRIES:
                    raise VidpipeError(f"cannot connect to the Ray cluster at {address}: it failed to start a "
                                       f"session for this client {attempt} times; the last: {reason}") from None
                log.warning("the Ray cluster at %s failed to start a session for this client (%s); trying again",
                            address, reason)
                time.sleep(RAY_SESSION_PAUSE_S)
    except ConnectionError as exc:
        hint = ""
        if client and "timeout" in str(exc):
            hint = (" (a cluster with token authentication, Ray's default since 2.59, needs its token here: "
                    "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token, with RAY_AUTH_MODE=token)")
        raise VidpipeError(f"cannot connect to the Ray cluster at {address}: {exc}{hint}") from None
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _not_rays_sigterm_note(record: logging.LogRecord) -> bool:
    return "SIGTERM handler" not in record.getMessage()


def _send_ray_token() -> None:
    """Clusters started by Ray >= 2.59 expect a token, which Ray's client sends only when told to (Ray reads
    this when it is imported): told so where a token is found and the user has not said otherwise."""
    if "RAY_AUTH_MODE" not in os.environ and _ray_token_found():
        os.environ["RAY_AUTH_MODE"] = "token"


def _ray_token_found() -> bool:
    """A Ray token where Ray looks for one: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    return Path(path).is_file()


class _RayVideoProcessor:
    """A Ray actor around VideoProcessor: the model loads once per actor; outputs go to the shared `out`."""

    def __init__(self, config: PipelineConfig, out: str, segment_seconds: float) -> None:
        tqdm.set_lock(threading.RLock())  # as in a local worker: no multiprocessing lock for bars never shown
        self._processor = VideoProcessor(config, out, segment_seconds)

    def process(self, item: CorpusItem) -> dict:
        return self._processor(item)


# --- progress -----------------------------------------------------------------------------------------

class _CorpusProgress:
    """One bar for the whole corpus, counting videos: it ends at the number of videos handled, whatever their
    outcome (frames could not: a file cut short gives fewer than its header promises, a corrupt one none). The
    frames done so far ride beside it, with the videos that failed."""

    def __init__(self, items: list[CorpusItem], enabled: bool) -> None:
        self._failed = self._frames = 0
        self._shown = 0.0  # when the frames were last shown: twice a second at most, as the bar itself
        self._bar = tqdm(total=len(items), unit="video", desc="corpus", disable=not enabled, dynamic_ncols=True,
                         mininterval=0.5)
        # Workers report frames done through this queue; None when nothing is displayed (no thread polls it).
        if enabled:
            _start_quiet_resource_tracker()
        self.queue = multiprocessing.get_context("spawn").Queue() if enabled else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True) if enabled else None

    def __enter__(self) -> _CorpusProgress:
        if self._thread:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
            self.queue.close()
        self._bar.close()

    def video_done(self, record: dict, count_frames: bool = False) -> None:
        """A video was handled; `count_frames` adds its frames (Ray actors cannot report them as they go)."""
        if record["status"] == "error":
            self._failed += 1
            log.warning("%s failed: %s", record["video_id"], record["error"])
        if count_frames:
            self._frames += record["frames_processed"]
        self._show_postfix(refresh=False)
        self._bar.update(1)

    def _show_postfix(self, refresh: bool) -> None:
        self._bar.set_postfix_str(f"{self._frames:,} frames" + (f", {self._failed} failed" if self._failed else ""),
                                  refresh=refresh)

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                self._frames += self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if time.monotonic() - self._shown >= 0.5:
                self._shown = time.monotonic()
                self._show_postfix(refresh=True)

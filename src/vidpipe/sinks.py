"""Where results go: the annotated video, the detection and per-frame tables, MOTChallenge track files.

Every sink writes to `<name>.partial` and renames it to `<name>` only in `close()`, so a crash or a
kill never leaves a file that looks finished; `abort()` removes the partial file. Viewers (a window, a
web page) get the annotated frames too, and keep no file.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
import pyarrow as pa

from .detections import Detections
from .errors import VidpipeError
from .files import PartialFile
from .frames import Frame, VideoInfo
from .tracking.link import linked_ids

if TYPE_CHECKING:
    import pandas as pd

TABLE_FORMATS = ("parquet", "csv")
VIDEO_PRESET = "ultrafast"  # x264: the fastest; slower presets make smaller files
VIDEO_CRF = 23
WALL_TIME = pa.timestamp("us", tz="UTC")
FLUSH_FRAMES = 1000  # buffered frames with detections before the detection table writes a row group


DETECTION_SCHEMA = pa.schema(
    [
        ("video", pa.string()),
        ("frame", pa.int64()),
        ("time_s", pa.float64()),
        ("track_id", pa.int64()),
        ("linked_id", pa.int64()),
        ("class_id", pa.int64()),
        ("class_name", pa.string()),
        ("track_class", pa.string()),
        ("score", pa.float32()),
        ("detected", pa.bool_()),
        ("x1", pa.float32()),
        ("y1", pa.float32()),
        ("x2", pa.float32()),
        ("y2", pa.float32()),
    ]
)


def detection_schema(target: bool = False) -> pa.Schema:
    """The detection table's columns; `target` adds `target_s` after `time_s` (with --sample-fps)."""
    if not target:
        return DETECTION_SCHEMA
    return DETECTION_SCHEMA.insert(DETECTION_SCHEMA.get_field_index("time_s") + 1, pa.field("target_s", pa.float64()))


class Sink(Protocol):
    """A file output: receives every processed frame with its detections, in order."""

    path: Path  # the final name, which exists only once close() has published it

    def write(self, frame: Frame, detections: Detections) -> None: ...

    def close(self) -> None:
        """Finish the output and publish it under its final name."""
        ...

    def abort(self) -> None:
        """Discard the partial output."""
        ...


class Viewer(Protocol):
    """Shows the annotated frames as they are made (a window, a web page); writes no file. One that also serves
    the run's snapshots (the preview server) says where in `outputs_url`, for the events' `snapshot_url`."""

    def write(self, frame: Frame, detections: Detections) -> None: ...

    def close(self) -> None: ...


def write_table(frame: pd.DataFrame, path: str | Path, fmt: str) -> None:
    """Write a whole table atomically in `fmt` (parquet or csv)."""
    out = PartialFile(path)
    try:
        if fmt == "parquet":
            frame.to_parquet(out.partial, index=False)
        else:
            frame.to_csv(out.partial, index=False)
    except BaseException:
        out.discard()
        raise
    out.commit()


class VideoSink:
    """Video through PyAV (the pipeline hands it annotated frames): H.264 (yuv420p) in MP4 with the source's
    timestamps and audio, its index first (faststart: a browser starts playing at once).

    Each frame keeps its source timestamp in the source's time base, so fractional and variable frame
    rates don't drift. Audio packets are copied (not re-encoded) from the source and interleaved as the
    video advances. Odd frame sizes are padded by one pixel, as 4:2:0 needs even sizes.
    """

    def __init__(
        self,
        path: str | Path,
        info: VideoInfo,
        *,
        preset: str = VIDEO_PRESET,
        crf: int = VIDEO_CRF,
        copy_audio: bool = True,
        audio_to_end: bool = True,
        threads: int | None = None,
        starts_at: float | None = None,
    ) -> None:
        """`starts_at`: the source time the video's 0 stands for (a file's `--start`: a picture that starts
        after its sound keeps the offset), or None for the first frame's (a live stream)."""
        import av

        self.path = Path(path)
        self._file = PartialFile(path)
        self._time_base = info.time_base or Fraction(1, 90_000)
        self._frame_duration = 1.0 / info.fps
        self._audio_to_end = audio_to_end
        self.width, self.height = info.width + info.width % 2, info.height + info.height % 2
        self.codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        # The index (moov) goes before the media data, so a browser plays the file before it has all of it.
        self._container = av.open(str(self._file.partial), mode="w", format="mp4",
                                  options={"movflags": "+faststart"})
        try:
            stream = self._container.add_stream(self.codec, rate=Fraction(info.fps).limit_denominator(100_000))
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
            stream.time_base = self._time_base
            stream.codec_context.time_base = self._time_base  # else PyAV rounds timestamps to 1/rate
            if self.codec == "libx264":
                stream.options = {"preset": preset, "crf": str(crf), "threads": str(threads or _x264_threads())}
            self._stream = stream
            self._audio = (_AudioCopier(info.uri, self._container, info.origin_s) if copy_audio and info.has_audio
                           else None)
        except BaseException:
            self._container.close()
            self._file.discard()
            raise
        self._starts_at = starts_at
        self._offset: float | None = None  # the source time of the output's 0
        self._last_pts = -1
        self._last_time = 0.0
        self.frames_written = 0

    def write(self, frame: Frame, detections: Detections) -> None:
        import av

        image = frame.image
        if image.shape[1] != self.width or image.shape[0] != self.height:
            image = _fit(image, self.width, self.height)
        if self._offset is None:
            self._offset = frame.time if self._starts_at is None else min(self._starts_at, frame.time)
        time = frame.time - self._offset
        pts = max(round(time / self._time_base), self._last_pts + 1)
        # OpenCV's BGR -> I420 is ten times faster than handing PyAV BGR for swscale to convert.
        video_frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        video_frame.pts, video_frame.time_base = pts, self._time_base
        if self._audio:
            self._audio.copy_until(frame.time, self._offset)
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self._last_pts, self._last_time = pts, frame.time
        self.frames_written += 1

    def end_audio_at_last_frame(self) -> None:
        """Copy the source's audio only up to the last frame written (a run that stopped early)."""
        self._audio_to_end = False

    def close(self) -> None:
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            if self._audio and self._offset is not None:
                end = None if self._audio_to_end else self._last_time + self._frame_duration
                self._audio.copy_until(end, self._offset)
        except BaseException:
            self.abort()
            raise
        self._close_container()
        if self.frames_written == 0:
            self._file.discard()
            return
        self._file.commit()

    def abort(self) -> None:
        self._close_container()
        self._file.discard()

    def _close_container(self) -> None:
        if self._audio:
            self._audio.close()
            self._audio = None
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file is being discarded or already reported broken
                pass
            self._container = None


class _AudioCopier:
    """Remuxes the source's first audio stream into an output container, packet by packet, in time order."""

    def __init__(self, uri: str, output, origin_s: float) -> None:
        """`origin_s`: the source's time 0 on its own clock, the video's too, so sound and picture keep their
        offset."""
        import av

        self._input = av.open(uri, metadata_errors="ignore")
        source = self._input.streams.audio[0]
        self._output = output
        self._stream = output.add_stream_from_template(source)
        self._time_base = source.time_base
        self._start = round(origin_s / self._time_base)
        self._packets = self._input.demux(source)
        self._pending = None

    def copy_until(self, until: float | None, offset: float) -> None:
        """Mux audio packets that start before `until` seconds (None: all), shifted by -`offset` s."""
        import av

        shift = round(offset / self._time_base) + self._start
        try:
            while True:
                packet = self._pending or next(self._packets, None)
                self._pending = None
                if packet is None:
                    return
                if packet.dts is None or packet.pts is None:
                    continue  # demuxer flush packet
                if until is not None and (packet.pts - self._start) * self._time_base >= until:
                    self._pending = packet
                    return
                if packet.pts < shift:
                    continue  # before the first video frame written
                packet.pts -= shift
                packet.dts -= shift
                packet.stream = self._stream
                self._output.mux(packet)
        except av.error.FFmpegError:
            self._packets = iter(())  # damaged audio: keep the video, stop copying

    def close(self) -> None:
        self._input.close()


def _x264_threads() -> int:
    """x264's threads when the user sets none. On up to four cores the detector already keeps every core busy,
    and x264's frame threads only add CPU time (15% at 720p on two cores); on more, FFmpeg picks (0)."""
    return 1 if (os.cpu_count() or 1) <= 4 else 0


def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pad by one pixel (odd source size) or, for a mid-stream size change, scale into the video's size with
    the picture's own proportions (black bars where they differ)."""
    h, w = image.shape[:2]
    if 0 <= width - w <= 1 and 0 <= height - h <= 1:
        return cv2.copyMakeBorder(image, 0, height - h, 0, width - w, cv2.BORDER_REPLICATE)
    scale = min(width / w, height / h)
    new_w, new_h = min(width, max(1, round(w * scale))), min(height, max(1, round(h * scale)))
    scaled = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    return cv2.copyMakeBorder(scaled, top, height - new_h - top, left, width - new_w - left, cv2.BORDER_CONSTANT)


class TableWriter:
    """A table written in row groups (Parquet) or chunks (CSV) into a partial file, published by `close()`."""

    def __init__(self, path: str | Path, schema: pa.Schema, fmt: str) -> None:
        import pyarrow.csv
        import pyarrow.parquet

        if fmt not in TABLE_FORMATS:
            raise VidpipeError(f"unknown table format {fmt!r} (use {' or '.join(TABLE_FORMATS)})")
        self.path = Path(path)
        self.schema = schema
        self._file, self._fmt = PartialFile(path), fmt
        writer = pyarrow.parquet.ParquetWriter if fmt == "parquet" else pyarrow.csv.CSVWriter
        self._writer = writer(str(self._file.partial), schema)
        self.rows = 0

    def write(self, columns: dict | pa.Table) -> None:
        table = columns if isinstance(columns, pa.Table) else pa.table(columns, schema=self.schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self, rewrite: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None) -> None:
        """Publish the table; `rewrite` first passes every written batch through it (streamed: memory stays
        flat), for a column known only at the end (the offline linked ids)."""
        try:
            self._writer.close()
            if rewrite is not None:
                self._rewrite(rewrite)
        except BaseException:
            self.abort()
            raise
        self._file.commit()

    def _rewrite(self, rewrite: Callable[[pa.RecordBatch], pa.RecordBatch]) -> None:
        import pyarrow.csv
        import pyarrow.parquet

        source = self._file.partial
        if self._fmt == "parquet":
            batches, writer = pyarrow.parquet.ParquetFile(source).iter_batches(), pyarrow.parquet.ParquetWriter
        else:
            options = pyarrow.csv.ConvertOptions(column_types=self.schema, strings_can_be_null=True)
            batches, writer = pyarrow.csv.open_csv(source, convert_options=options), pyarrow.csv.CSVWriter
        with self._file.rewriting() as redone, writer(str(redone), self.schema) as out:
            for batch in batches:
                out.write_batch(rewrite(batch))

    def abort(self) -> None:
        try:
            self._writer.close()
        except Exception:  # noqa: BLE001 - already closed or broken; the partial file goes either way
            pass
        self._file.discard()


class _BufferedTable:
    """A table sink that buffers rows and writes them in `_flush()` (row groups); the last at `close()`."""

    _table: TableWriter

    @property
    def schema(self) -> pa.Schema:
        return self._table.schema

    def _flush(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        try:
            self._flush()
        except BaseException:
            self.abort()
            raise
        self._table.close(self._rewrite())

    def _rewrite(self) -> Callable[[pa.RecordBatch], pa.RecordBatch] | None:
        """What `TableWriter.close` applies to the rows already written (links found at the end); None: nothing."""
        return None

    def abort(self) -> None:
        self._table.abort()


class DetectionTableSink(_BufferedTable):
    """One row per detection, streamed to Parquet (row groups) or CSV so memory stays flat.

    `class_name` is what the detector said in that frame; `track_class` the class voted over the row's
    track so far (equal to `class_name` for untracked rows). `linked_id` is the id of the object the row's
    track was linked into (`tracking.link`: the first track of its chain; the track's own id where it joined
    none); rows are written as they come, so the links found when the run ends are applied at `close()`, in
    one streamed pass over the written table. With `clock_origin` (live sources: when the run started, UTC),
    a `wall_time` column gives each row's wall-clock time.
    """

    def __init__(self, path: str | Path, video: str, fmt: str = "parquet", flush_rows: int = 50_000,
                 clock_origin: dt.datetime | None = None, target: bool = False,
                 links: Mapping[int, int] | None = None) -> None:
        """`target`: a `target_s` column, the sampling time each frame stands for (with --sample-fps); `links`
        ({track: linked id}) is read at `close()`."""
        self.path = Path(path)
        self._links = {} if links is None else links
        self._video = video
        self._flush_rows = flush_rows
        self._origin = clock_origin
        self._target = target
        schema = detection_schema(target)
        if clock_origin:
            schema = schema.append(pa.field("wall_time", WALL_TIME))
        self._table = TableWriter(path, schema, fmt)
        self._chunks: list[tuple[int, float, Detections, float]] = []  # index, time, target: never the image
        self._buffered = 0

    @property
    def rows(self) -> int:
        return self._table.rows

    def write(self, frame: Frame, detections: Detections) -> None:
        if len(detections):
            self._chunks.append((frame.index, frame.time, detections, frame.stands_for))
            self._buffered += len(detections)
            if self._buffered >= self._flush_rows or len(self._chunks) >= FLUSH_FRAMES:
                self._flush()

    def _flush(self) -> None:
        if not self._chunks:
            return
        counts = [len(d) for _, _, d, _ in self._chunks]
        dets = [d for _, _, d, _ in self._chunks]
        xyxy = np.concatenate([d.xyxy for d in dets])
        times = np.repeat([time for _, time, _, _ in self._chunks], counts).astype(np.float64)
        columns = {
            "video": pa.array([self._video] * sum(counts), pa.string()),
            "frame": np.repeat([index for index, _, _, _ in self._chunks], counts).astype(np.int64),
            "time_s": times,
            **({"target_s": np.repeat([t for *_, t in self._chunks], counts).astype(np.float64)}
               if self._target else {}),
            "track_id": np.concatenate([d.track_id for d in dets]),
            "linked_id": np.concatenate([d.track_id for d in dets]),
            "class_id": np.concatenate([d.class_id for d in dets]),
            "class_name": pa.array(np.concatenate([d.class_name for d in dets]).tolist(), pa.string()),
            "track_class": pa.array(np.concatenate([d.track_class_name for d in dets]).tolist(), pa.string()),
            "score": np.concatenate([d.score for d in dets]),
            "detected": np.concatenate([d.detected for d in dets]),
            "x1": xyxy[:, 0],
            "y1": xyxy[:, 1],
            "x2": xyxy[:, 2],
            "y2": xyxy[:, 3],
        }
        if self._origin:
            columns["wall_time"] = wall_times(self._origin, times)
        self._table.write(columns)
        self._chunks, self._buffered = [], 0

    def _rewrite(self) -> Callable[[pa.RecordBatch], pa.RecordBatch] | None:
        return self._linked if self._links else None

    def _linked(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        at = batch.schema.get_field_index("linked_id")
        ids = linked_ids(batch.column("track_id").to_numpy(), self._links)
        return batch.set_column(at, "linked_id", pa.array(ids, pa.int64()))


class FrameTableSink(_BufferedTable):
    """One row per processed frame, empty frames included, so "nothing there" is visible, not missing.

    Columns: `video, frame, time_s, n_detections` (every row); `n_<class>`, the objects in view (rows of
    confirmed tracks: what the live page and MQTT say is there), for `classes` (the run's `--classes`, else
    every class the model knows: every video, of any content, gets the same columns); `p_any_<class>` =
    1 - prod(1 - score) over that class's detections, the chance that at least one is really there, for the
    classes of interest; and the `top_k` highest-scoring objects. The schema is fixed when the sink opens,
    so rows are streamed in row groups and memory stays flat.
    """

    def __init__(self, path: str | Path, video: str, names: Sequence[str], fmt: str = "parquet",
                 classes: Sequence[int] | None = None, interest: Sequence[int] = (), top_k: int = 3,
                 clock_origin: dt.datetime | None = None,
                 extra: Callable[[], dict[str, int]] | None = None, extra_columns: Sequence[str] = (),
                 target: bool = False) -> None:
        """`extra` gives this frame's values of `extra_columns` (integers: zone occupancies); `target` adds
        `target_s`, the sampling time each frame stands for (with --sample-fps)."""
        self._target = target
        self.path = Path(path)
        self._extra, self._extra_columns = extra, list(extra_columns)
        self._video = video
        self._names = np.asarray(names, dtype=object)
        self._classes = np.asarray(sorted(range(len(names)) if classes is None else classes), np.int64)
        self._interest = list(interest)
        self._top_k = top_k
        self._origin = clock_origin
        schema = frame_schema(names, self._classes, self._interest, top_k, wall_time=clock_origin is not None,
                              extra_columns=self._extra_columns, target=target)
        self._table = TableWriter(path, schema, fmt)
        self._rows: list[tuple] = []  # (index, time, counts, p_any, top classes, top scores) until flushed

    def write(self, frame: Frame, detections: Detections) -> None:
        counts = np.bincount(detections.class_id[detections.confirmed], minlength=len(self._names))[self._classes]
        p_any = [p_any_present(detections.score[detections.class_id == c]) for c in self._interest]
        order = np.argsort(-detections.score, kind="stable")[: self._top_k]
        extra = self._extra() if self._extra else {}
        self._rows.append((frame.index, frame.time, len(detections), counts, p_any,
                           detections.class_id[order], detections.score[order],
                           [extra.get(c, 0) for c in self._extra_columns], frame.stands_for))
        if len(self._rows) >= FLUSH_FRAMES:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        index, time, total, counts, p_any, top_class, top_score, extra, target = zip(*self._rows)
        times = np.asarray(time, np.float64)
        columns: dict = {"video": pa.array([self._video] * len(index), pa.string()),
                         "frame": np.asarray(index, np.int64), "time_s": times}
        if self._target:
            columns["target_s"] = np.asarray(target, np.float64)
        if self._origin:
            columns["wall_time"] = wall_times(self._origin, times)
        columns["n_detections"] = np.asarray(total, np.int64)
        counts = np.vstack(counts).astype(np.int64)
        for j, class_id in enumerate(self._classes):
            columns[f"n_{column_name(self._names[class_id])}"] = counts[:, j]
        p_any = np.asarray(p_any, np.float64).reshape(len(index), len(self._interest))
        for j, class_id in enumerate(self._interest):
            columns[f"p_any_{column_name(self._names[class_id])}"] = p_any[:, j]
        for k in range(self._top_k):
            present = [k < len(c) for c in top_class]
            columns[f"top{k + 1}_class"] = pa.array(
                [self._names[c[k]] if ok else None for c, ok in zip(top_class, present)], pa.string())
            columns[f"top{k + 1}_score"] = np.array(
                [float(s[k]) if ok else np.nan for s, ok in zip(top_score, present)], np.float64)
        extra = np.asarray(extra, np.int64).reshape(len(index), len(self._extra_columns))
        for j, name in enumerate(self._extra_columns):
            columns[name] = extra[:, j]
        self._table.write(columns)
        self._rows = []


def frame_schema(names: Sequence[str], classes: Sequence[int], interest: Sequence[int], top_k: int,
                 wall_time: bool = False, extra_columns: Sequence[str] = (), target: bool = False) -> pa.Schema:
    """The per-frame table's columns, fixed by the model's names and the run's settings, not by the video."""
    fields = [("video", pa.string()), ("frame", pa.int64()), ("time_s", pa.float64())]
    fields += [("target_s", pa.float64())] if target else []
    fields += [("wall_time", WALL_TIME)] if wall_time else []
    fields += [("n_detections", pa.int64())]
    fields += [(f"n_{column_name(names[c])}", pa.int64()) for c in sorted(classes)]
    fields += [(f"p_any_{column_name(names[c])}", pa.float64()) for c in interest]
    for k in range(1, top_k + 1):
        fields += [(f"top{k}_class", pa.string()), (f"top{k}_score", pa.float64())]
    fields += [(name, pa.int64()) for name in extra_columns]
    return pa.schema(fields)


EVENT_SCHEMA = pa.schema([
    ("video", pa.string()), ("frame", pa.int64()), ("time_s", pa.float64()), ("track_id", pa.int64()),
    ("linked_id", pa.int64()), ("class_name", pa.string()), ("kind", pa.string()), ("name", pa.string()),
    ("direction", pa.string()),
])


def read_arrow(path: Path, schema: pa.Schema) -> pa.Table:
    """A table written by vidpipe, with exactly `schema`'s types, from Parquet or CSV (where an empty or all-null
    column would otherwise get a guessed type, and an id of digits would become a number)."""
    import pyarrow.csv
    import pyarrow.parquet

    if path.suffix == ".parquet":
        return pyarrow.parquet.read_table(path).cast(schema)
    options = pyarrow.csv.ConvertOptions(column_types=schema, strings_can_be_null=True)
    return pyarrow.csv.read_csv(path, convert_options=options).select(schema.names).cast(schema)


def write_arrow(table: pa.Table, path: str | Path, fmt: str) -> Path:
    """A whole Arrow table, written atomically in `fmt` (parquet or csv) with its own schema."""
    writer = TableWriter(path, table.schema, fmt)
    try:
        writer.write(table)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return Path(path)


VISIT_SCHEMA = pa.schema([
    ("video", pa.string()), ("track_id", pa.int64()), ("class_name", pa.string()), ("zone", pa.string()),
    ("enter_frame", pa.int64()), ("enter_time_s", pa.float64()), ("exit_frame", pa.int64()),
    ("exit_time_s", pa.float64()), ("dwell_s", pa.float64()), ("cut_at_start", pa.bool_()),
    ("cut_at_end", pa.bool_()),
])


def write_visits(path: Path, video: str, visits: Sequence, fmt: str) -> Path:
    """Every zone visit, in order of entry; `cut_at_start`/`cut_at_end` mark those whose entry or exit was
    not seen, whose length is therefore not a dwell time."""
    visits = sorted(visits, key=lambda v: (v.enter_frame, v.zone, v.track_id))
    return write_arrow(_records(video, visits, VISIT_SCHEMA), path, fmt)


def write_events(path: Path, video: str, events: Sequence, fmt: str, links: Mapping[int, int] | None = None) -> Path:
    """The analytics' events (line crossings, zone entries and exits), in time order, each with its track's
    linked id (`links`: {track: linked id}; a track's own id where it joined none)."""
    events = sorted(events, key=lambda e: (e.frame, e.time_s))
    linked = linked_ids([e.track_id for e in events], links or {})
    return write_arrow(_records(video, events, EVENT_SCHEMA, {"linked_id": linked}), path, fmt)


def _records(video: str, records: Sequence, schema: pa.Schema, given: Mapping | None = None) -> pa.Table:
    """Records (events, visits) as a table: `video`, then each of `schema`'s other columns from their fields
    (or from `given`, by column)."""
    given = given or {}
    columns = {"video": [video] * len(records),
               **{f: given[f] if f in given else [getattr(r, f) for r in records] for f in schema.names[1:]}}
    return pa.table(columns, schema=schema)


TRACK_SCHEMA = pa.schema([
    ("video", pa.string()), ("track_id", pa.int64()), ("linked_id", pa.int64()), ("class_name", pa.string()),
    ("first_frame", pa.int64()), ("last_frame", pa.int64()), ("first_time_s", pa.float64()),
    ("last_time_s", pa.float64()), ("duration_s", pa.float64()), ("frames_detected", pa.int64()),
    ("mean_score", pa.float64()), ("max_score", pa.float64()), ("first_x", pa.float64()),
    ("first_y", pa.float64()), ("last_x", pa.float64()), ("last_y", pa.float64()), ("path_px", pa.float64()),
    ("confirmed", pa.bool_()), ("object_id", pa.string()),
])


class TrackTableSink(_BufferedTable):
    """One row per track: its voted class, when it was first and last seen, how often, how confidently, where
    it started and ended (box centres), how far it travelled (pixels, summed between observations), and
    whether it was ever confirmed (`confirmed`: only those are objects; the others count in no answer), and
    then its object's id (`object_id`, as its lifecycle and line and zone events name it; null for the others).
    `linked_id` is the track the offline linking joined it to (`tracking.link`; its own id where none).

    Aggregates grow with the number of tracks, not frames; the table is written when the run ends, with
    each track's final voted class.
    """

    def __init__(self, path: str | Path, video: str, fmt: str = "parquet",
                 object_ids: Mapping[int, str] | None = None, links: Mapping[int, int] | None = None) -> None:
        self.path = Path(path)
        self._links = {} if links is None else links  # {track: linked id}, filled when the run ends
        self._video, self._fmt = video, fmt
        self._object_ids = {} if object_ids is None else object_ids  # filled as objects are confirmed
        self._names: Sequence[str] = ()
        # track id -> [first_frame, last_frame, first_t, last_t, n, score_sum, max_score, fx, fy, lx, ly, path, cls,
        #              confirmed]
        self._tracks: dict[int, list] = {}
        self._table = TableWriter(path, TRACK_SCHEMA, fmt)

    def write(self, frame: Frame, detections: Detections) -> None:
        tracked = detections[detections.is_tracked & detections.detected]  # what was seen, not predicted
        if not len(tracked):
            return
        self._names = tracked.names
        centres = (tracked.xyxy[:, :2] + tracked.xyxy[:, 2:]) / 2
        for track, score, (x, y), voted, confirmed in zip(tracked.track_id.tolist(), tracked.score.tolist(),
                                                          centres.tolist(), tracked.track_class.tolist(),
                                                          tracked.confirmed.tolist()):
            row = self._tracks.get(track)
            if row is None:
                self._tracks[track] = [frame.index, frame.index, frame.time, frame.time, 1, score, score, x, y, x, y,
                                       0.0, voted, confirmed]
                continue
            row[11] += float(np.hypot(x - row[9], y - row[10]))
            row[1], row[3], row[9], row[10], row[12] = frame.index, frame.time, x, y, voted
            row[13] = row[13] or confirmed
            row[4] += 1
            row[5] += score
            row[6] = max(row[6], score)

    def _flush(self) -> None:
        """The whole table, once, at close: a track's row is final only when the run ends."""
        rows = sorted(self._tracks.items())
        ids = [track for track, _ in rows]
        values = list(zip(*[row for _, row in rows])) or [()] * 14
        first_t, last_t = np.asarray(values[2], np.float64), np.asarray(values[3], np.float64)
        frames = np.asarray(values[4], np.int64)
        self._table.write({
            "video": pa.array([self._video] * len(ids), pa.string()),
            "track_id": np.asarray(ids, np.int64), "linked_id": linked_ids(ids, self._links),
            "class_name": pa.array([self._names[c] for c in values[12]], pa.string()),
            "first_frame": np.asarray(values[0], np.int64), "last_frame": np.asarray(values[1], np.int64),
            "first_time_s": first_t, "last_time_s": last_t, "duration_s": last_t - first_t,
            "frames_detected": frames,
            "mean_score": np.asarray(values[5], np.float64) / np.maximum(frames, 1),
            "max_score": np.asarray(values[6], np.float64),
            "first_x": np.asarray(values[7], np.float64), "first_y": np.asarray(values[8], np.float64),
            "last_x": np.asarray(values[9], np.float64), "last_y": np.asarray(values[10], np.float64),
            "path_px": np.asarray(values[11], np.float64), "confirmed": np.asarray(values[13], bool),
            "object_id": pa.array([self._object_ids.get(track) for track in ids], pa.string()),
        })


def wall_times(origin: dt.datetime, seconds: np.ndarray) -> pa.Array:
    """UTC timestamps `seconds` after `origin`."""
    micros = np.round(np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64)
    start = int(origin.timestamp() * 1_000_000)
    return pa.array(start + micros, type=WALL_TIME)


def p_any_present(scores: np.ndarray) -> float:
    """Probability that at least one of these detections is real, taking each score as independent."""
    return float(1.0 - np.prod(1.0 - np.asarray(scores, dtype=np.float64)))


def column_name(class_name: str) -> str:
    return class_name.replace(" ", "_")


class MotSink:
    """Tracks as a MOTChallenge text file: `frame(1-based),id,x,y,w,h,score,-1,-1,-1`. The ids are the linked
    ones (`links`, {track: linked id}, read at `close()`: one object, one id, as an evaluation reads them)."""

    def __init__(self, path: str | Path, links: Mapping[int, int] | None = None) -> None:
        self.path = Path(path)
        self._links = {} if links is None else links
        self._file = PartialFile(path)
        self._handle = open(self._file.partial, "w", encoding="ascii")

    def write(self, frame: Frame, detections: Detections) -> None:
        for (x1, y1, x2, y2), track, score in zip(detections.xyxy, detections.track_id, detections.score):
            self._handle.write(
                f"{frame.index + 1},{track},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1\n"
            )

    def close(self) -> None:
        self._handle.close()
        if self._links:
            with self._file.rewriting() as redone, open(self._file.partial, encoding="ascii") as rows, \
                    open(redone, "w", encoding="ascii") as out:
                for row in rows:
                    frame, track, rest = row.split(",", 2)
                    out.write(f"{frame},{self._links.get(int(track), track)},{rest}")
        self._file.commit()

    def abort(self) -> None:
        self._handle.close()
        self._file.discard()

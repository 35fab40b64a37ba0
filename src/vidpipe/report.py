"""`report.html`: what a run (or a corpus) found, as one page a person reads before any table.

One self-contained file: plots are inline SVG (drawn here, in a few milliseconds), thumbnails inline JPEG, and there is
no script but a few lines that sort the corpus table, so it opens from a file:// URL in any browser, offline,
and prints. It is built from the run's tables and a handful of crops kept while the frames went by
(`Thumbnails`), never by decoding the video again.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .detections import Detections
from .files import write_atomic
from .frames import Frame
from .summary import RunSummary

if TYPE_CHECKING:
    import pandas as pd

TIMELINE_TRACKS = 40  # tracks drawn in the timeline; the rest are counted
THUMBNAILS = 12
PLOT_CLASSES = 8  # classes drawn over time and in the score plot (the most frequent)
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; } td, th { padding: 3px 12px 3px 0; text-align: left; vertical-align: top; }
th { color: #555; font-weight: 600; } .facts th { width: 180px; }
.banner { background: #fff3cd; border: 1px solid #e0c060; padding: 8px 12px; margin: 12px 0; }
.thumbs { display: flex; flex-wrap: wrap; gap: 12px; } figure { margin: 0; text-align: center; }
figure img { height: 120px; border: 1px solid #ccc; } figcaption { font-size: 12px; color: #444; }
svg { max-width: 100%; height: auto; } video { max-width: 100%; }
.sortable th { cursor: pointer; text-decoration: underline dotted; } .error { color: #a00; }
@media print { video { display: none; } h2 { break-after: avoid; } figure, svg { break-inside: avoid; } }
"""
SORT_SCRIPT = """
for (const table of document.querySelectorAll("table.sortable")) {
  table.querySelectorAll("th").forEach((th, column) => th.addEventListener("click", () => {
    const body = table.tBodies[0], rows = Array.from(body.rows), up = th.dataset.up !== "1";
    const key = (row) => { const text = row.cells[column].dataset.value ?? row.cells[column].textContent;
                           const number = parseFloat(text); return isNaN(number) ? text : number; };
    rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (up ? 1 : -1));
    th.dataset.up = up ? "1" : "0"; rows.forEach((row) => body.appendChild(row));
  }));
}
"""


class Thumbnails:
    """Keeps, for each track, the crop of its most confident detection (small JPEG bytes), so the report can
    show what was found without reading the video again. Only the most promising tracks keep a crop (most
    frames, then best score), so memory stays small on any length of input."""

    def __init__(self, keep: int = 200, side: int = 160) -> None:
        self.keep, self.side = keep, side
        self._best: dict[int, tuple[float, bytes]] = {}  # track -> (score, jpeg)
        self._frames: dict[int, int] = {}  # track -> frames seen

    def write(self, frame: Frame, detections: Detections) -> None:
        tracked = np.flatnonzero(detections.is_tracked & detections.detected)  # seen, not predicted
        for i in tracked:
            track, score = int(detections.track_id[i]), float(detections.score[i])
            self._frames[track] = self._frames.get(track, 0) + 1
            if score <= self._best.get(track, (-1.0, b""))[0]:
                continue
            jpeg = self._crop(frame.image, detections.xyxy[i])
            if jpeg:
                self._best[track] = (score, jpeg)
        if len(self._best) > 2 * self.keep:  # drop the least promising crops
            ranked = sorted(self._best, key=lambda t: (self._frames.get(t, 0), self._best[t][0]), reverse=True)
            for track in ranked[self.keep:]:
                del self._best[track]

    def crop(self, track: int) -> bytes | None:
        return self._best.get(track, (0.0, None))[1]

    def _crop(self, image: np.ndarray, box: np.ndarray) -> bytes | None:
        h, w = image.shape[:2]
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if x2 - x1 < 2 or y2 - y1 < 2:
            return None
        crop = image[y1:y2, x1:x2]
        scale = self.side / max(crop.shape[:2])
        if scale < 1:
            crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                              interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return jpeg.tobytes() if ok else None


def write_run_report(path: Path, summary: RunSummary, tables: dict[str, Path], thumbnails: Thumbnails | None,
                     video: Path | None, scene: np.ndarray | None = None) -> Path:
    """The run's report.html, from its summary, its table files and the crops kept during the run; `scene`
    is a frame with the lines and zones drawn on it."""
    detections = _read(tables.get("detections"))
    frames = _read(tables.get("frames"))
    tracks = _read(tables.get("tracks"))
    counts = summary.counts
    parts = [f"<h1>{html.escape(summary.input.name)}</h1>",
             f"<p>{counts.frames_processed:,} frames, {counts.detections:,} detections, {counts.tracks:,} objects"
             f" &middot; {html.escape(summary.started_at)}</p>"]
    if summary.status == "partial":
        parts.append(f'<p class="banner" id="status-banner">This run was <b>partial</b>: '
                     f"{summary.source_frames_lost:,} source frame(s) could not be decoded (a file cut short or "
                     f"damaged); everything below covers the {counts.frames_processed:,} frames processed.</p>")
    elif summary.status != "complete":
        parts.append(f'<p class="banner" id="status-banner">This run was <b>{summary.status}</b>: everything '
                     f"below covers the {counts.frames_processed:,} frames processed before it stopped.</p>")
    if summary.lines or summary.zones or counts.tracks:
        parts.append(_section("answers", "Answers", _answers(summary)))
    parts.append(_section("facts", "Facts", _facts(summary)))
    if summary.regions:
        parts.append(_section("regions", "Lines and zones", _regions(summary, scene)))
    if video is not None:
        parts.append(_section("video", "Annotated video",
                              f'<video controls preload="metadata" src="{html.escape(video.name)}"></video>'
                              f'<p><a href="{html.escape(video.name)}">{html.escape(video.name)}</a></p>'))
    if frames is not None and len(frames):
        parts.append(_section("classes-over-time", "Objects per class over time", _classes_over_time(frames)))
    if tracks is not None and len(tracks):
        parts.append(_section("timeline", "Tracks over time", _timeline(tracks)))
        if thumbnails is not None:
            parts.append(_section("thumbnails", "What was found", _thumbnails(_objects(tracks), thumbnails)))
    if detections is not None and len(detections):
        parts.append(_section("detections-per-class", "Detections per class", _per_class(detections)))
        parts.append(_section("scores", "Scores per class", _scores(detections)))
    events = _read(tables.get("events"))
    if summary.lines and events is not None:
        parts.append(_section("line-counts", "Line crossings over time", _counts_over_time(events, frames)))
    visits = _read(tables.get("visits"))
    if summary.zones and visits is not None:
        parts.append(_section("dwell", "Time spent in each zone (complete visits)", _dwell(visits)))
    heatmap = tables.get("heatmap")
    if heatmap is not None and Path(heatmap).is_file():
        data = base64.b64encode(Path(heatmap).read_bytes()).decode("ascii")
        parts.append(_section("heatmap", "Where tracked objects were",
                              f'<img alt="heatmap" style="max-width: 100%" src="data:image/png;base64,{data}">'))
    return write_atomic(path, _page(f"vidpipe: {summary.input.name}", "\n".join(parts)))


def write_corpus_report(path: Path, videos: pd.DataFrame, tracks: pd.DataFrame | None) -> Path:
    """OUT/report.html: a sortable row per video (linked to its own report wherever that exists, partial and
    failed videos' too), totals per class, where each class lasts longest, failures."""
    import pandas as pd

    counts = [c for c in videos.columns if c.startswith("n_")]
    rows = []
    for row in videos.itertuples(index=False):
        top = sorted(((getattr(row, c), c[2:].replace("_", " ")) for c in counts if getattr(row, c)), reverse=True)
        top_text = ", ".join(f"{name} {n:,}" for n, name in top[:3]) or "-"
        own = Path("videos") / row.video_id / "report.html"
        link = (f'<a href="{html.escape(own.as_posix())}">{html.escape(row.video_id)}</a>'
                if (path.parent / own).is_file() else html.escape(row.video_id))
        duration = "" if pd.isna(row.duration_s) else f"{row.duration_s:.1f}"
        lost = 0 if pd.isna(row.source_frames_lost) else int(row.source_frames_lost)
        expected = row.source_frames_expected
        lost_text = f"{lost:,}" + ("" if pd.isna(expected) else f" of {int(expected):,}")
        status = f'<span class="error">{row.status}</span>' if row.status in ("partial", "error") else row.status
        rows.append(f'<tr><td data-value="{html.escape(row.video_id)}">{link}</td><td>{status}</td>'
                    f"<td>{duration}</td><td>{row.frames_processed}</td>"
                    f"<td data-value=\"{lost}\">{lost_text if lost else 0}</td>"
                    f"<td>{row.detections}</td><td>{row.tracks}</td><td>{html.escape(top_text)}</td></tr>")
    parts = [f"<h1>Corpus: {len(videos)} videos</h1>",
             "<p>" + ", ".join(f"{n} {s}" for s, n in videos["status"].value_counts().items()) + "</p>"]
    partial = videos[videos["status"] == "partial"]
    if len(partial):
        ids = ", ".join(html.escape(v) for v in partial["video_id"][:20]) + (" ..." if len(partial) > 20 else "")
        parts.append(f'<p class="banner" id="partial-banner"><b>{len(partial)} video(s) are partial</b>: source '
                     f"frames could not be read (a file cut short or damaged), so their tables cover only part of "
                     f"them: {ids}. <code>vidpipe batch --partial-is-error</code> counts them as failed.</p>")
    parts.append(_section("videos", "Videos (click a heading to sort)",
                          '<table class="sortable"><thead><tr><th>video</th><th>status</th><th>duration s</th>'
                          "<th>frames processed</th><th>source frames lost</th><th>detections</th><th>tracks</th>"
                          "<th>top classes</th>"
                          f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"))
    totals = videos[counts].sum().sort_values(ascending=False)
    totals = totals[totals > 0]
    if len(totals):
        parts.append(_section("class-totals", "Detections per class, whole corpus",
                              _bar_chart([c[2:].replace("_", " ") for c in totals.index], totals.to_numpy(),
                                         "detections")))
    if tracks is not None and len(tracks):
        longest = tracks.sort_values("duration_s", ascending=False).drop_duplicates(["class_name", "video_id"])
        lines = []
        for name, group in longest.groupby("class_name", sort=True):
            where = ", ".join(f"{html.escape(v)} ({d:.1f} s)" for v, d in zip(group["video_id"][:3],
                                                                               group["duration_s"][:3]))
            lines.append(f"<tr><th>{html.escape(name)}</th><td>{where}</td></tr>")
        parts.append(_section("longest", "Where each class lasts longest (one track)",
                              f"<table>{''.join(lines)}</table>"))
    else:
        present = [c for c in videos.columns if c.startswith("s_") and videos[c].sum() > 0]
        lines = []
        for column in sorted(present, key=lambda c: -videos[c].sum()):
            top = videos.nlargest(3, column)
            where = ", ".join(f"{html.escape(v)} ({d:.1f} s)" for v, d in zip(top["video_id"], top[column]) if d > 0)
            lines.append(f"<tr><th>{html.escape(column[2:].replace('_', ' '))}</th><td>{where}</td></tr>")
        content = (f"<table>{''.join(lines)}</table><p>Seconds in which the class was seen (no tracker in this "
                   f"pipeline, so no single object's duration).</p>" if lines else "<p>Nothing was seen.</p>")
        parts.append(_section("longest", "Where each class is seen longest (seconds present)", content))
    failed = videos[videos["status"] == "error"]
    if len(failed):
        items = "".join(f'<li><b>{html.escape(v)}</b>: <span class="error">{html.escape(str(e))}</span></li>'
                        for v, e in zip(failed["video_id"], failed["error"]))
        parts.append(_section("failures", f"Failures ({len(failed)})", f"<ul>{items}</ul>"))
    return write_atomic(path, _page("vidpipe corpus", "\n".join(parts), script=SORT_SCRIPT))


def _page(title: str, body: str, script: str = "") -> str:
    tail = f"<script>{script}</script>" if script else ""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
            f"<body>\n{body}\n{tail}</body></html>\n")


def _section(anchor: str, title: str, content: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>\n{content}\n</section>'


def _answers(summary: RunSummary) -> str:
    """The figures people ask for first, as numbers: crossings per line and direction by class, each zone's
    visits and dwell, and the objects (confirmed tracks) per class. The same numbers as summary.json."""
    parts = []
    if summary.lines:
        rows = []
        for name, figures in summary.lines.items():
            for direction in ("in", "out"):
                by_class = figures.get(direction, {})
                detail = ", ".join(f"{c} {n}" for c, n in by_class.items()) or "-"
                rows.append(f"<tr><td>{html.escape(name)}</td><td>{direction}</td>"
                            f"<td>{sum(by_class.values())}</td><td>{html.escape(detail)}</td></tr>")
        parts.append('<table id="answers-lines"><thead><tr><th>line</th><th>direction</th><th>crossings</th>'
                     f"<th>by class</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
    if summary.zones:
        keys = ("visits", "complete_visits", "cut_visits", "mean_dwell_s", "median_dwell_s", "max_dwell_s",
                "peak_occupancy")
        heads = ("visits", "complete", "cut", "mean dwell s", "median dwell s", "max dwell s", "peak occupancy")
        rows = ["<tr><td>" + html.escape(name) + "</td>" + "".join(
            f"<td>{'-' if figures.get(k) is None else figures.get(k)}</td>" for k in keys) + "</tr>"
            for name, figures in summary.zones.items()]
        parts.append('<table id="answers-zones"><thead><tr><th>zone</th>' + "".join(f"<th>{h}</th>" for h in heads)
                     + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
                     "<p>Dwell times count complete visits only: a cut visit was already inside when first seen or "
                     "still inside when last seen (the clip's ends, a lost track), so its length is not a dwell "
                     "time.</p>")
    objects = summary.counts.tracks_per_class or {}
    if objects:
        rows = "".join(f"<tr><td>{html.escape(c)}</td><td>{n}</td></tr>" for c, n in objects.items())
        parts.append('<table id="answers-objects"><thead><tr><th>class</th><th>objects (tracks)</th></tr></thead>'
                     f"<tbody>{rows}</tbody></table>")
    if summary.counts.unconfirmed_tracks:
        parts.append(f'<p id="answers-unconfirmed">{summary.counts.unconfirmed_tracks:,} more track(s) were never '
                     "confirmed (too few or too unsure detections) and count as no object.</p>")
    return "\n".join(parts)


def _regions(summary: RunSummary, scene: np.ndarray | None) -> str:
    """Each line and zone with its points as configured, and a frame of the video with them drawn on it."""
    rows = "".join(
        f"<tr><td>{r['kind']}</td><td>{html.escape(r['name'])}</td>"
        f"<td>{html.escape(', '.join(f'({x:g}, {y:g})' for x, y in r['points']))}</td>"
        f"<td>{html.escape(', '.join(r['classes'])) if r['classes'] else 'all'}</td></tr>" for r in summary.regions)
    fractions = "Points are fractions of the frame where every value lies in [0, 1], else pixels."
    parts = ['<table id="regions-table"><thead><tr><th>kind</th><th>name</th><th>points</th><th>classes</th></tr>'
             f"</thead><tbody>{rows}</tbody></table><p>{fractions}</p>"]
    if scene is not None:
        ok, jpeg = cv2.imencode(".jpg", scene, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:
            data = base64.b64encode(jpeg.tobytes()).decode("ascii")
            parts.append(f'<img id="regions-picture" alt="the lines and zones on the last frame" '
                         f'style="max-width: 100%" src="data:image/jpeg;base64,{data}">')
    return "".join(parts)


def _facts(summary: RunSummary) -> str:
    source, detector, counts = summary.input, summary.detector, summary.counts
    duration = f"{source.duration:.2f} s" if source.duration else "unknown"
    audio = source.audio_codec or "none"
    rows = [
        ("status", summary.status),
        ("input", f"{source.uri} ({source.kind}, {source.width}x{source.height}, {source.fps:.3f} fps, "
                  f"{duration}, audio: {audio}{f', rotated {source.rotation} degrees' if source.rotation else ''})"),
        ("model", f"{detector.name}: {detector.model}"),
        ("runtime", f"{detector.runtime} ({detector.precision}), {summary.engine} engine"),
        ("settings", f"conf {detector.conf}, iou {detector.iou}, imgsz {detector.imgsz}, classes "
                     f"{', '.join(map(str, detector.classes)) if detector.classes else 'all'}, tracker "
                     f"{summary.tracker.name if summary.tracker else 'none'}"),
        ("frames processed", f"{counts.frames_processed:,}"),
        ("frames decoded", "-" if summary.frames_decoded is None else f"{summary.frames_decoded:,}"),
        ("source frames lost", f"{summary.source_frames_lost:,}"),
        ("detections", f"{counts.detections:,}"),
        ("objects", f"{counts.tracks:,}"),
        ("tracks never confirmed", f"{counts.unconfirmed_tracks:,}"),
        ("wall time", f"{summary.wall_time_s:.1f} s"),
        ("speed", f"{summary.fps} fps"),
    ]
    cells = "".join(f'<tr><th>{name}</th><td id="fact-{name.replace(" ", "-")}">{html.escape(str(value))}</td></tr>'
                    for name, value in rows)
    return f'<table class="facts">{cells}</table>'


# --- hand-made SVG charts: a few milliseconds each, nothing to import, nothing to download -------------------

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
WIDTH, LEFT, RIGHT, TOP, BOTTOM = 960, 150, 150, 12, 36  # chart size and margins, in SVG pixels
ROW = 18  # height of one bar or track row


def _colors(names: Sequence[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _ticks(high: float, count: int = 6) -> list[float]:
    """Round tick values from 0 to at least `high`."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    step = 10 ** np.floor(np.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if m * step >= raw)
    return [float(v) for v in np.arange(0, high + step * 0.999, step)]


def _svg(height: int, body: list[str], x_ticks: list[float], x_label: str, scale) -> str:
    """An SVG chart: `body` elements, an x axis with `x_ticks` placed by `scale`, and its label."""
    axis = [f'<line x1="{LEFT}" y1="{height - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{height - BOTTOM}" stroke="#888"/>']
    for tick in x_ticks:
        x = scale(tick)
        text = f"{tick:g}" if abs(tick) < 1e6 else f"{tick:.3g}"
        axis.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{height - BOTTOM}" stroke="#eee"/>'
                    f'<text x="{x:.1f}" y="{height - BOTTOM + 14}" text-anchor="middle">{text}</text>')
    axis.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{height - 4}" text-anchor="middle" fill="#555">'
                f"{html.escape(x_label)}</text>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
            f'height="{height}" font-family="system-ui, sans-serif" font-size="11">{"".join(axis + body)}</svg>')


def _linear(low: float, high: float, start: float, end: float):
    span = (high - low) or 1.0
    return lambda v: start + (v - low) / span * (end - start)


def _bar_chart(names: list[str], values: np.ndarray, label: str) -> str:
    height = TOP + BOTTOM + ROW * len(names)
    ticks = _ticks(float(max(values, default=0)))
    x = _linear(0, ticks[-1], LEFT, WIDTH - RIGHT)
    colors, body = _colors(names), []
    for i, (name, value) in enumerate(zip(names, values)):
        y = TOP + ROW * i
        body.append(f'<text x="{LEFT - 6}" y="{y + ROW * 0.7:.1f}" text-anchor="end">{html.escape(name)}</text>'
                    f'<rect x="{LEFT}" y="{y + 2}" width="{x(value) - LEFT:.1f}" height="{ROW - 4}" '
                    f'fill="{colors[name]}"><title>{html.escape(name)}: {int(value):,}</title></rect>'
                    f'<text x="{x(value) + 4:.1f}" y="{y + ROW * 0.7:.1f}">{int(value):,}</text>')
    return _svg(height, body, ticks, label, x)


def _classes_over_time(frames: pd.DataFrame) -> str:
    columns = [c for c in frames.columns if c.startswith("n_") and c != "n_detections" and frames[c].sum() > 0]
    columns = sorted(columns, key=lambda c: -frames[c].sum())[:PLOT_CLASSES]
    if not columns:
        return "<p>Nothing was detected.</p>"
    window = max(1, len(frames) // 300)  # about 300 points: the trend, not every frame's jitter
    series = {c[2:].replace("_", " "): frames[c].rolling(window, min_periods=1).mean().to_numpy() for c in columns}
    return _line_chart(frames["time_s"].to_numpy(), series, "objects")


def _line_chart(times: np.ndarray, series: dict[str, np.ndarray], y_label: str) -> str:
    """Lines over time (seconds), one colour per series, legend on the right."""
    height = 260
    peak = max([float(v.max()) for v in series.values()] + [1.0])
    x_ticks, y_ticks = _ticks(float(times.max()) if len(times) else 1.0), _ticks(peak, 4)
    x = _linear(0, x_ticks[-1], LEFT, WIDTH - RIGHT)
    y = _linear(0, y_ticks[-1], height - BOTTOM, TOP)
    step = max(1, len(times) // 600)
    colors, body = _colors(list(series)), []
    for tick in y_ticks:
        body.append(f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>')
    for i, (name, values) in enumerate(series.items()):
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times[::step], values[::step]))
        body.append(f'<polyline points="{points}" fill="none" stroke="{colors[name]}" stroke-width="1.6"/>'
                    f'<text x="{WIDTH - RIGHT + 10}" y="{TOP + 14 * i + 10}" fill="{colors[name]}">'
                    f"&#9632; {html.escape(name)}</text>")
    body.append(f'<text x="{LEFT - 40}" y="{TOP + 10}" fill="#555">{html.escape(y_label)}</text>')
    return _svg(height, body, x_ticks, "time (s)", x)


def _counts_over_time(events: pd.DataFrame, frames: pd.DataFrame) -> str:
    """Running totals of each line's crossings, per direction, over the run's time."""
    crossings = events[events["kind"] == "cross"]
    times = frames["time_s"].to_numpy() if frames is not None and len(frames) else np.asarray([0.0])
    series = {}
    for (name, direction), group in crossings.groupby(["name", "direction"], sort=True):
        series[f"{name} {direction}"] = np.searchsorted(np.sort(group["time_s"].to_numpy()), times, side="right")
    if not series:
        return "<p>Nothing crossed the lines.</p>"
    return _line_chart(times, {k: v.astype(float) for k, v in series.items()}, "crossings")


def _dwell(visits: pd.DataFrame) -> str:
    """Each zone's dwell times, from its complete visits, with the longest marked."""
    complete = visits[~(visits["cut_at_start"].astype(bool) | visits["cut_at_end"].astype(bool))]
    groups = {name: group["dwell_s"].to_numpy(np.float64) for name, group in complete.groupby("zone", sort=True)}
    if not groups:
        cut = len(visits)
        return f"<p>No complete visits{f' ({cut} cut by the ends of the input or lost tracks)' if cut else ''}.</p>"
    longest = max(float(v.max()) for v in groups.values())
    return _box_plot(groups, _ticks(longest), "dwell time (s)", "complete visits", show_max=True)


def _timeline(tracks: pd.DataFrame) -> str:
    shown = tracks.sort_values(["duration_s", "max_score"], ascending=False).head(TIMELINE_TRACKS)
    height = TOP + BOTTOM + ROW * len(shown)
    ticks = _ticks(float(tracks["last_time_s"].max()))
    x = _linear(0, ticks[-1], LEFT, WIDTH - RIGHT)
    colors, body = _colors(list(tracks["class_name"].value_counts().index)), []
    for i, row in enumerate(shown.itertuples(index=False)):
        top = TOP + ROW * i
        label = f"{row.class_name} #{row.track_id}"
        width = max(x(row.last_time_s) - x(row.first_time_s), 2.0)
        body.append(f'<text x="{LEFT - 6}" y="{top + ROW * 0.7:.1f}" text-anchor="end">{html.escape(label)}</text>'
                    f'<rect x="{x(row.first_time_s):.1f}" y="{top + 3}" width="{width:.1f}" height="{ROW - 6}" '
                    f'fill="{colors[row.class_name]}"><title>{html.escape(label)}: {row.first_time_s:.1f}-'
                    f"{row.last_time_s:.1f} s, best score {row.max_score:.2f}</title></rect>")
    rest = len(tracks) - len(shown)
    note = f"<p>The {len(shown)} longest of {len(tracks)} tracks; {rest} more not drawn.</p>" if rest else ""
    return _svg(height, body, ticks, "time (s)", x) + note


def _per_class(detections: pd.DataFrame) -> str:
    counts = detections["class_name"].value_counts()
    return _bar_chart(list(counts.index), counts.to_numpy(), "detections")


def _scores(detections: pd.DataFrame) -> str:
    names = list(detections["class_name"].value_counts().index[:PLOT_CLASSES])
    groups = {n: detections.loc[detections["class_name"] == n, "score"].to_numpy(np.float64) for n in names}
    return _box_plot(groups, [0, 0.2, 0.4, 0.6, 0.8, 1.0], "detection score", "detections")


def _box_plot(groups: dict[str, np.ndarray], ticks: list[float], label: str, unit: str,
              show_max: bool = False) -> str:
    """A box per group: the middle half of its values, a line at the median, whiskers from 5% to 95%, and
    with `show_max` a dot at the largest value, labelled."""
    names = list(groups)
    height = TOP + BOTTOM + ROW * len(names)
    x = _linear(0, ticks[-1], LEFT, WIDTH - RIGHT)
    colors, body = _colors(names), []
    for i, name in enumerate(names):
        p5, q1, median, q3, p95 = np.percentile(groups[name], [5, 25, 50, 75, 95])
        middle = TOP + ROW * i + ROW / 2
        body.append(f'<text x="{LEFT - 6}" y="{middle + 4:.1f}" text-anchor="end">{html.escape(name)}</text>'
                    f'<line x1="{x(p5):.1f}" y1="{middle:.1f}" x2="{x(p95):.1f}" y2="{middle:.1f}" stroke="#555"/>'
                    f'<rect x="{x(q1):.1f}" y="{middle - 6:.1f}" width="{max(x(q3) - x(q1), 1):.1f}" height="12" '
                    f'fill="{colors[name]}"><title>{html.escape(name)}: median {median:.2f}, '
                    f"{len(groups[name]):,} {unit}</title></rect>"
                    f'<line x1="{x(median):.1f}" y1="{middle - 6:.1f}" x2="{x(median):.1f}" y2="{middle + 6:.1f}" '
                    f'stroke="#000" stroke-width="2"/>')
        if show_max:
            peak = float(groups[name].max())
            body.append(f'<circle cx="{x(peak):.1f}" cy="{middle:.1f}" r="3.5" fill="#000"/>'
                        f'<text x="{x(peak) + 6:.1f}" y="{middle + 4:.1f}">max {peak:.1f}</text>')
    return _svg(height, body, ticks, label, x)


def _thumbnails(tracks: pd.DataFrame, thumbnails: Thumbnails) -> str:
    ranked = tracks.sort_values(["duration_s", "max_score"], ascending=False)
    figures = []
    for row in ranked.itertuples(index=False):
        jpeg = thumbnails.crop(int(row.track_id))
        if jpeg is None:
            continue
        data = base64.b64encode(jpeg).decode("ascii")
        label = f"{row.class_name} #{row.track_id}"
        figures.append(f'<figure><img alt="{html.escape(label)}" src="data:image/jpeg;base64,{data}">'
                       f"<figcaption>{html.escape(label)}<br>{row.duration_s:.1f} s, best "
                       f"{row.max_score:.2f}</figcaption></figure>")
        if len(figures) == THUMBNAILS:
            break
    return f'<div class="thumbs">{"".join(figures)}</div>' if figures else "<p>No crops were kept.</p>"


def _objects(tracks: pd.DataFrame) -> pd.DataFrame:
    """The tracks that are objects (older tables, without `confirmed`, as they are)."""
    return tracks[tracks["confirmed"]] if "confirmed" in tracks else tracks


def _read(path: Path | None) -> pd.DataFrame | None:
    import pandas as pd  # not at start-up (0.2-0.4 s): pyarrow imports it with the first table rows it writes

    if path is None or not Path(path).is_file():
        return None
    return pd.read_parquet(path) if Path(path).suffix == ".parquet" else pd.read_csv(path)

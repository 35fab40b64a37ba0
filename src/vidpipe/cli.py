"""The `vidpipe` command. Heavy modules are imported inside commands so `vidpipe --help` stays instant."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

import click

from . import __version__, stopping
from .errors import InputError, VidpipeError
from .live_options import LiveOptions

if TYPE_CHECKING:  # imported inside the commands: `vidpipe --help` stays instant
    from .session import RunResult
    from .summary import RunSummary

LIVE_DEFAULTS = LiveOptions()

EXIT_STOPPED, EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Group(click.Group):
    """Turns vidpipe's errors into one line on stderr and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VidpipeError as exc:
            if stopping.stop_received():  # the stop cut a library's work short, and it said so in its own words
                _stopped(ctx)
            _fail(str(exc), EXIT_USAGE if isinstance(exc, InputError) else EXIT_RUNTIME)
        except KeyboardInterrupt:  # a stop before the first frame (model loading, connecting), or after the end
            _stopped(ctx)
        except click.UsageError as exc:  # a bad option: the same one line as every other error
            _fail(exc.format_message(), EXIT_USAGE)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:  # whoever read the output has gone (`vidpipe models | head -1`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # else the exit flush fails again
            sys.exit(EXIT_RUNTIME)
        except Exception as exc:
            if stopping.stop_received():  # a library turned the stop into its own error (an import cut short)
                _stopped(ctx)
            if os.environ.get("VIDPIPE_DEBUG"):
                raise
            _fail(f"unexpected {type(exc).__name__}: {exc} (set VIDPIPE_DEBUG=1 for the traceback)", EXIT_RUNTIME)


def _stopped(ctx: click.Context) -> None:
    """A stop that reached the command itself: before the first frame, or after the outputs were finished."""
    if stopping.outputs_finished():
        click.echo("vidpipe: stopped after the outputs were finished", err=True)
    else:
        click.echo("vidpipe: interrupted before any frame was processed; nothing was written", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # Straight out: a stop that lands inside a library's import (torch's) can leave the interpreter to re-raise
    # SIGINT at exit, which would replace this exit code with "killed by a signal".
    os._exit(EXIT_STOPPED if ctx.invoked_subcommand == "live" else EXIT_INTERRUPTED)


def _fail(message: str, code: int) -> None:
    click.echo(f"vidpipe: error: {message}", err=True)
    sys.exit(code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="vidpipe")
def main() -> None:
    """Detect, track and label objects in videos; write annotated videos and detection tables."""
    stopping.install()  # Ctrl-C and SIGTERM stop between frames; the outputs are finished, not half-written
    log = logging.getLogger("vidpipe")  # vidpipe's own messages only: libraries log at INFO to the root logger
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("vidpipe: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


# The runtime and precision options, the same for `run`, `live`, `batch` and `eval` (with --detect for `eval mot`).
RUNTIME_OPTION = click.option(
    "--runtime", type=click.Choice(["auto", "torch", "onnx", "openvino"]),
    help="Inference runtime for YOLO checkpoints [default: auto: OpenVINO on a CPU, torch on a GPU].")
PRECISION_OPTION = click.option(
    "--precision", type=click.Choice(["auto", "fp32", "bf16", "int8"]),
    help="auto: int8 on OpenVINO where it passed the accuracy gate for the model and measures faster on this "
         "CPU, else the runtime's default (bf16 on CPUs that have it); fp32, bf16 (OpenVINO, CPUs with bf16) "
         "and int8 (OpenVINO) force one.")

# The pipeline's settings, shared by `run` and `batch`; each maps to a PipelineConfig key (None: not given).
PIPELINE_OPTIONS = [
    click.option("-p", "--pipeline", help="Preset pipeline: a YAML file or a shipped name (default, traffic, "
                                          "people, yt8m)."),
    click.option("--detector", help="Detector backend [default: yolo]."),
    click.option("-m", "--model", help="Model file or name [default: the bundled models/yolov8n.pt]."),
    click.option("--conf", type=float, help="Detection score threshold [default: 0.25; 0.1 when tracking]."),
    click.option("--iou", type=float, help="NMS IoU threshold [default: 0.7]."),
    click.option("--imgsz", type=int, help="Inference image size [default: 640]."),
    click.option("--device", help="cpu, cuda, cuda:0, mps... [default: best available]."),
    click.option("--classes", help="Only these classes: names or ids, comma-separated (e.g. person,car)."),
    click.option("--batch-size", type=int, help="Frames per inference batch [default: 4]."),
    click.option("--detect-every", type=int, help="Run the detector on every Kth frame; the frames between get "
                                                  "the tracker's predicted boxes (detected = false) [default: 1]."),
    RUNTIME_OPTION,
    PRECISION_OPTION,
    click.option("--sequential", "engine", flag_value="sequential", default=None,
                 help="Run the stages one after another on one thread (same outputs; the default overlaps them)."),
    click.option("--threads", type=int, help="Cap on the decoder's, runtime's and encoder's threads."),
    click.option("--tracker", help="bytetrack or none [default: bytetrack]. Its parameters are set in a --pipeline "
                                   "YAML, under trackers: (see pipelines/default.yaml)."),
    click.option("--camera-motion", type=click.Choice(["auto", "on", "off"]),
                 help="Move the tracks with the camera (pans, hand-held shake): auto where the picture moves "
                      "(a fixed camera pays a check a second), on for every frame, off [default: auto]."),
    click.option("--scene-cuts", type=click.Choice(["auto", "on", "off"]),
                 help="End every track where the video cuts to another shot (edited video: a montage, an upload): "
                      "auto in files, not on cameras and streams (a light going on is no cut), on, off "
                      "[default: auto]."),
    click.option("--link", type=click.Choice(["offline", "online", "off"]),
                 help="Join the tracks of one object: online, the tracker relinks a track lost up to 3 s; "
                      "offline (files), also one pass over every track once the file has ended, for the tables "
                      "(linked_id), tracks.txt and the counts; off, neither [default: online]."),
    click.option("--merge-iou", type=float, help="Before tracking, boxes of two classes on one object (a pickup "
                                                 "called car and truck) at least this alike become one detection; "
                                                 "0 keeps both [default: 0.85]."),
    click.option("--labels", help="What a box's label says: any of class,id,score (comma-separated), or none "
                                  "[default: class,id,score]. In a crowd, a label that would cover another label "
                                  "or the people around it is drawn smaller or left out (the box stays), as is "
                                  "one on a box much smaller than the label."),
    click.option("--color-by", type=click.Choice(["track", "class"]), help="Box colours [default: track]."),
    click.option("--trails/--no-trails", default=None, help="Draw motion trails of tracks, at the point lines and "
                                                            "zones count (--anchor)."),
    click.option("--overlay/--no-overlay", default=None, help="Draw fps, latency and dropped frames on the video."),
    click.option("--video/--no-video", default=None, help="Write the annotated video [default: yes]."),
    click.option("--table-format", type=click.Choice(["parquet", "csv"]), help="Table format [default: parquet]."),
    click.option("--mot/--no-mot", default=None, help="Write tracks as MOTChallenge txt [default: yes]."),
    click.option("--report/--no-report", default=None, help="Write report.html (plots, thumbnails) [default: yes]."),
    click.option("--line", "lines", multiple=True, callback=lambda ctx, param, value: list(value) or None,
                 metavar="NAME=x1,y1,x2,y2", help="A counting line (repeatable); pixels, or fractions of the frame "
                                                  "when all values lie in [0, 1]."),
    click.option("--zone", "zones", multiple=True, callback=lambda ctx, param, value: list(value) or None,
                 metavar="NAME=x1,y1,x2,y2,x3,y3,...", help="A zone: entries, exits, dwell time, occupancy "
                                                           "(repeatable)."),
    click.option("--mask", "masks", multiple=True, callback=lambda ctx, param, value: list(value) or None,
                 metavar="x1,y1,x2,y2,x3,y3,...", help="A polygon where detections are dropped before tracking "
                                                        "(those whose box's bottom centre lies inside); points as "
                                                        "--zone's (repeatable)."),
    click.option("--filter", "filters", multiple=True, callback=lambda ctx, param, value: list(value) or None,
                 metavar="CLASS:key=value,...", help="Drop a class's detections below min_score or outside "
                                                     "min_area/max_area (pixels, or a fraction of the frame when "
                                                     "below 1), e.g. person:min_score=0.5,min_area=2000 "
                                                     "(repeatable)."),
    click.option("--anchor", type=click.Choice(["bottom-center", "center"]),
                 help="The point of a box that lines and zones count [default: bottom-center]."),
    click.option("--zone-hysteresis", "zone_hysteresis_s", type=float,
                 help="Seconds an object must stay on the other side of a zone's border to count [default: 0.5]."),
    click.option("--line-hysteresis", "line_hysteresis_s", type=float,
                 help="Seconds an object must stay past a line for its crossing to count (or be half its height "
                      "past it, or leave the picture); 0 counts at once [default: 0.5]."),
    click.option("--heatmap/--no-heatmap", default=None, help="Write heatmap.png of where tracked objects were."),
    click.option("--events", "events", multiple=True, callback=lambda ctx, param, value: list(value) or None,
                 metavar="URL", help="Send each line crossing and zone entry or exit as it happens (repeatable): "
                                     "file:///path/events.jsonl, http(s)://... (a webhook POST), or "
                                     "mqtt://host[:port]/prefix (needs vidpipe[mqtt])."),
    click.option("--snapshots/--no-snapshots", default=None, help="With each event, a JPEG of the frame with the "
                                                                  "object's box, in OUT/snapshots/."),
    click.option("--ha-discovery", is_flag=True, default=None,
                 help="With an mqtt:// --events URL: Home Assistant's MQTT discovery, retained under homeassistant/ "
                      "(a sensor per class in view and per line and direction, a camera per class's snapshot)."),
    click.option("--clips", metavar="PRE,POST", help="Each object's clip, OUT/clips/<object id>.mp4: from PRE seconds "
                                                     "before its start to POST after its end (e.g. 5,5), at the "
                                                     "source's timestamps; finished once its end is past."),
    click.option("--clips-annotated/--no-clips-annotated", default=None,
                 help="The clips show the boxes, lines and zones [default: the bare frames]."),
    click.option("--stride", type=int, help="Process every Nth frame."),
    click.option("--sample-fps", type=float, help="Process frames at this rate, picked by timestamp (e.g. 1)."),
    click.option("--sample-mode", type=click.Choice(["exact", "keyframes"]),
                 help="exact: the frames --sample-fps picks, decoding only what they need; keyframes: only "
                      "keyframes, each standing for its slot (target_s in the tables): fast, approximate "
                      "[default: exact]."),
    click.option("--start", type=float, help="Start at this time (seconds)."),
    click.option("--end", type=float, help="Stop at this time (seconds)."),
    click.option("--max-frames", type=int, help="Stop after this many processed frames."),
    click.option("--sequence-fps", type=float,
                 help="Frame rate of an image sequence [default: its seqinfo.ini, else 30]."),
    click.option("--video-preset", help="x264 preset of the annotated video [default: ultrafast]."),
    click.option("--video-crf", type=int, help="x264 quality of the annotated video, 0-51, lower is better "
                                              "[default: 23]."),
    click.option("--top-k", type=int, help="The per-frame table names this many best objects [default: 3]."),
]


def pipeline_options(command):
    for option in reversed(PIPELINE_OPTIONS):
        command = option(command)
    return command


@main.command()
@click.argument("input", metavar="INPUT")
@click.option("-o", "--out", type=click.Path(file_okay=False), help="Output folder [default: runs/<input name>].")
@pipeline_options
@click.option("--realtime", is_flag=True, help="Play the file at its own rate, as a camera would: frames that come "
                                               "while the detector is busy are dropped (and counted).")
@click.option("--profile", is_flag=True, help="Print each stage's throughput, busy fraction and queue use.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def run(input: str, out: str | None, pipeline: str | None, quiet: bool, profile: bool, realtime: bool,
        **options) -> None:
    """Run detection and tracking on INPUT and write the outputs.

    INPUT is a video file (anything FFmpeg reads), a stream URL, a folder or glob of images, a single
    image, or an image URL.
    """
    from .pipeline import Pipeline, PipelineConfig

    config = PipelineConfig.load(pipeline, **options)
    config.check_no_cameras("run")
    if realtime:
        config.check_live(replay=True)
    result = Pipeline(config).run(input, out, progress=not quiet, realtime=realtime)
    s = result.summary
    click.echo(f"{s.counts.frames_processed} frames in {s.wall_time_s:.1f} s ({s.fps} fps): "
               f"{s.counts.detections} detections, {s.counts.tracks} objects "
               f"({s.counts.unconfirmed_tracks} tracks never confirmed)")
    _echo_results(result)
    if profile:
        click.echo(_profile_table(s))
    _exit_for_stops(result, EXIT_INTERRUPTED if result.interrupted else None)


def _exit_for_stops(result, code: int | None) -> None:
    """Say what a stop did to the run, truthfully, and exit with `code` (or 130 when outputs were cut)."""
    s = result.summary
    if s.missing_outputs:
        click.echo(f"vidpipe: stopped twice: {', '.join(s.missing_outputs)} not written (summary.json lists what is "
                   f"missing; the tables are complete for the frames processed)", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if result.interrupted:
        click.echo("vidpipe: interrupted: the outputs cover the frames processed so far", err=True)
    elif result.stop_received:
        click.echo("vidpipe: a stop arrived while finishing: every frame had been processed and every output was "
                   "finished", err=True)
    if code is not None:
        sys.exit(code)


def _echo_results(result) -> None:
    """The counts, as numbers (lines, zones, objects), then each output's path."""
    _echo_answers(result.summary)
    width = max(len(k) for k in result.outputs)
    for key, path in result.outputs.items():
        click.echo(f"  {key:<{width}}  {path}")


def _echo_answers(summary: RunSummary) -> None:
    """Each line's crossings, each zone's visits and the objects, indented under the run (or camera) line."""
    for line in summary.answers():
        click.echo(f"  {line}")


def _profile_table(summary) -> str:
    lines = [f"{'stage':<8} {'frames/busy s':>13} {'busy':>6} {'queue':>11}"]
    for stage in summary.stages:
        rate = f"{stage.frames_per_busy_s:.1f}" if stage.frames_per_busy_s else "-"
        busy = f"{100 * stage.busy_fraction:.0f}%" if stage.busy_fraction is not None else "-"
        queue = f"{stage.mean_queue:.1f}/{stage.queue_capacity}" if stage.queue_capacity else "-"
        lines.append(f"{stage.stage:<8} {rate:>13} {busy:>6} {queue:>11}")
    det = summary.detector
    lines.append(f"engine {summary.engine}, runtime {det.runtime} ({det.precision}), "
                 f"batch {det.batch_size}, {summary.fps} fps overall")
    return "\n".join(lines)


@main.command()
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option("-o", "--out", type=click.Path(file_okay=False),
              help="Output folder [default: runs/live-<name>; several cameras: runs/live-cameras].")
@pipeline_options
@click.option("--width", type=int, help="Camera: capture width to request.")
@click.option("--height", type=int, help="Camera: capture height to request.")
@click.option("--camera-fps", type=float, help="Camera: frame rate to request.")
@click.option("--save", is_flag=True, help="Also write the annotated video (tables are always written).")
@click.option("--show", is_flag=True, help="Show the annotated frames in a window (needs a display).")
@click.option("--serve", metavar="[HOST:]PORT", help="Serve a preview page with the stream and live stats, and an "
                                                      "HTTP API (/api/...) [default host: 127.0.0.1].")
@click.option("--serve-token", envvar="VIDPIPE_SERVE_TOKEN", metavar="TOKEN",
              help="The token every request to --serve must carry (Authorization: Bearer TOKEN, or ?token=TOKEN); "
                   "needed when HOST is not loopback [env: VIDPIPE_SERVE_TOKEN].")
@click.option("--duration", type=float, help="Stop after this many seconds.")
@click.option("--realtime", is_flag=True, help="A file or image folder: play it at its own rate, as a camera "
                                               "would [default: as fast as it decodes].")
@click.option("--loop", is_flag=True, help="With --realtime: start the file again at its end, time carrying on.")
@click.option("--open-timeout", type=float, default=LIVE_DEFAULTS.open_timeout, show_default=True,
              help="Seconds to connect to a stream.")
@click.option("--read-timeout", type=float, default=LIVE_DEFAULTS.read_timeout, show_default=True,
              help="Seconds without data before a stream counts as lost.")
@click.option("--reconnect-delay", type=float, default=LIVE_DEFAULTS.reconnect_delay, show_default=True,
              help="First wait before reconnecting; doubles each failed attempt.")
@click.option("--max-reconnect-delay", type=float, default=LIVE_DEFAULTS.max_reconnect_delay, show_default=True,
              help="Longest wait between attempts.")
@click.option("--max-reconnects", type=int, default=LIVE_DEFAULTS.max_reconnects,
              help="Give up after this many failed attempts [default: never].")
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
def live(sources: tuple[str, ...], out: str | None, pipeline: str | None, save: bool, show: bool, serve: str | None,
         duration: float | None, realtime: bool, loop: bool, quiet: bool, **options) -> None:
    """Detect and track on a live SOURCE until Ctrl-C: a camera index (0), a stream URL (rtsp://,
    rtmp://, http(s):// MPEG-TS, MJPEG or HLS .m3u8), or a file or image folder (with --realtime, played
    as a camera would give it; --loop for a demo that never ends; without, every frame is processed).

    The newest frame is always the next one processed (frames that arrive while inference is busy are
    dropped and counted), so latency stays bounded. A stream that drops is reopened with back-off. Tables
    (with wall-clock times) are always written; the annotated video with --save.

    Several SOURCEs (each may be NAME=SOURCE), or a preset's cameras:, share one detector: each camera
    gets its own tracks and outputs in OUT/NAME/, OUT/summary.json gathers them, and --serve shows
    them all on one page.
    """
    from dataclasses import replace
    from pathlib import Path

    from .api import check_token
    from .config import CameraEntry, PipelineConfig
    from .live import LiveMonitor, default_out_dir, open_live, plays_a_file
    from .live_options import positive
    from .pipeline import Pipeline
    from .preview import PreviewServer, PreviewWindow, parse_address

    live_options = LiveOptions.take(options)  # its own options out of the pipeline's
    options["video"] = save  # never None: without --save, no video whatever the preset says
    config = PipelineConfig.load(pipeline, **options)
    if sources and config.cameras:
        raise InputError("cameras come from the command line (SOURCE...) or from the preset's cameras:, not both")
    entries = config.cameras or [CameraEntry.of(s) for s in sources]
    specs = [entry.source for entry in entries]
    if not specs:
        raise InputError("missing SOURCE: a camera index (0), a stream URL or a file (several for several cameras)")
    files = [plays_a_file(spec) for spec in specs]
    config.check_live(replay=realtime and all(files))
    live_options.check_sources(specs)
    positive("--duration", duration)
    if serve:  # a bad address, or one beyond loopback without a token, fails before the source is opened
        check_token(parse_address(serve)[0], live_options.serve_token)
    if len(specs) > 1 or config.cameras:
        if show:
            raise InputError("--show is for one camera; several are shown together with --serve PORT")
        _live_cameras(Pipeline(config), entries, out, live_options, realtime, loop, serve, duration, quiet)
        return
    source = specs[0]
    viewers = [PreviewWindow()] if show else []  # fails fast without a display
    if files[0] and not realtime:
        logging.getLogger("vidpipe").info("%s is read frame by frame, every frame processed; --realtime plays it "
                                          "at its own rate, as a camera would", source)
    runner = Pipeline(config)
    stream = open_live(source, live_options, realtime=realtime, loop=loop, opener=runner.open)
    if entries[0].name:  # NAME=SOURCE: the name in the tables and the default folder
        stream.info = replace(stream.info, name=entries[0].name)
    monitor = LiveMonitor()
    out_dir = Path(out) if out else default_out_dir(stream.info)
    try:
        if serve:
            viewers.append(PreviewServer(serve, monitor.snapshot, out_dir=out_dir, name=stream.info.name,
                                         token=live_options.serve_token))
        result = runner.process(stream, out_dir, progress=not quiet, viewers=viewers, duration=duration,
                                monitor=monitor)
    finally:
        stream.close()
    _finish_live(source, result)


def _finish_live(source: str, result: RunResult) -> None:
    """A one-camera live run's line, its answers, and its exit: 1 for a stream given up on."""
    s = result.summary
    latency = s.live.latency_ms
    click.echo(f"{s.counts.frames_processed} frames processed, {s.live.frames_dropped} dropped; latency p50 "
               f"{latency.p50 if latency else 0:.0f} ms, p95 {latency.p95 if latency else 0:.0f} ms; "
               f"{s.live.reconnects} reconnect(s)")
    _echo_results(result)
    if s.status == "gave_up":
        gap = s.live.gaps[-1]
        _fail(f"{source}: gave up after {gap['reconnect_attempts']} reconnect attempt(s) ({gap['reason']}); the "
              f"outputs cover the frames before", EXIT_RUNTIME)
    _exit_for_stops(result, None)


def _live_cameras(runner, cameras: list, out: str | None, options: LiveOptions, realtime: bool, loop: bool,
                  serve: str | None, duration: float | None, quiet: bool) -> None:
    """`vidpipe live` with several cameras: one detector, a folder per camera, one page, one line per camera."""
    from pathlib import Path

    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from .cameras import CameraRun
    from .preview import PreviewServer

    out_dir = Path(out) if out else Path("runs") / "live-cameras"
    server = None
    run = CameraRun(runner, cameras, out_dir, options, realtime, loop,
                    viewers=lambda name: [server.viewer(name)] if server else [])
    try:
        if serve:
            server = PreviewServer(serve, run.stats, [camera.name for camera in run.cameras], out_dir,
                                   token=options.serve_token)
        with logging_redirect_tqdm(loggers=[logging.getLogger("vidpipe")]), \
                tqdm(unit="frame", desc=f"{len(run.cameras)} cameras", disable=quiet, dynamic_ncols=True,
                     mininterval=0.5) as bar:
            summary = run.run(duration, bar.update)
    except BaseException:
        run.close()
        raise
    finally:
        if server:
            server.close()
    for camera in run.cameras:
        _echo_camera(camera.name, summary["cameras"][camera.name], camera.result)
    click.echo(f"{summary['frames_processed']} frames in {summary['wall_time_s']:.1f} s "
               f"({summary['processed_fps']} fps in all); outputs in {out_dir}/<camera>/, {out_dir}/summary.json")
    if summary["failed"]:
        _fail(f"camera(s) {', '.join(summary['failed'])} failed or gave up (summary.json says why); the others' "
              f"outputs are complete", EXIT_RUNTIME)
    cut = [f"{name}: {', '.join(c['summary']['missing_outputs'])}" for name, c in summary["cameras"].items()
           if c["summary"] and c["summary"]["missing_outputs"]]
    if cut:
        _fail(f"stopped twice: not written ({'; '.join(cut)}); the tables and summaries are complete",
              EXIT_INTERRUPTED)


def _echo_camera(name: str, camera: dict, result: RunResult | None) -> None:
    """One camera's line of a many-camera run, its answers under it as a one-camera run prints them; a camera
    without frames has no latency to show."""
    latency = camera["latency_ms"]
    timing = f", latency p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms" if latency else ""
    state = camera["status"] + (f": {camera['error']}" if camera["error"] else "")
    click.echo(f"{name}: {camera['frames_processed']} frames, {camera['processed_fps']:.1f} fps, "
               f"{camera['frames_dropped']} dropped{timing} ({state})")
    if result is not None:
        _echo_answers(result.summary)


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUTS...")
@click.option("-o", "--out", type=click.Path(file_okay=False), required=True, help="Corpus output folder.")
@pipeline_options
@click.option("--workers", type=int, default=1, show_default=True, help="Videos processed at once.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="Worker processes on this machine, or Ray workers on a cluster.")
@click.option("--address", help="With --executor ray: auto, or ray://HOST:PORT [default: start a local Ray].")
@click.option("--num-cpus", type=float, default=1, show_default=True, help="With Ray: CPUs per worker.")
@click.option("--num-gpus", type=float, default=0, show_default=True, help="With Ray: GPUs per worker.")
@click.option("--segment-seconds", type=float, default=5.0, show_default=True,
              help="Length of the per-segment summaries (YouTube-8M: 5).")
@click.option("--force", is_flag=True, help="Redo videos already done.")
@click.option("--partial-is-error", is_flag=True, help="A video that lost frames (cut short, damaged) counts as "
                                                       "failed, and is tried again next time [default: partial].")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def batch(inputs: tuple[str, ...], out: str, pipeline: str | None, workers: int, executor: str,
          address: str | None, num_cpus: float, num_gpus: float, segment_seconds: float, force: bool,
          partial_is_error: bool, quiet: bool, **options) -> None:
    """Process a corpus: INPUTS are video folders, globs, manifests (CSV/TXT) or paths and URLs.

    Each video gets OUT/videos/VIDEO_ID/ (what `vidpipe run` writes, with segments.parquet and
    presence.parquet) and is marked done last; a re-run skips done videos. OUT/detections/, OUT/frames/,
    OUT/segments/, OUT/presence/ (and OUT/tracks/, OUT/events/, OUT/visits/ where the pipeline makes them) are
    Parquet datasets, one file per video with a video_id column; OUT/videos.parquet has a row per video and
    OUT/report.html shows them. A video that lost frames is `partial` (in its summary.json too). Exits 1 when
    any video failed.
    """
    from .config import PipelineConfig
    from .corpus import run_batch

    config = PipelineConfig.load(pipeline, **options)
    config.check_no_cameras("batch")
    table = run_batch(inputs, out, config, workers=workers, executor=executor, force=force,
                      segment_seconds=segment_seconds, progress=not quiet, ray_address=address,
                      num_cpus=num_cpus, num_gpus=num_gpus, partial_is_error=partial_is_error)
    counts = table["status"].value_counts()
    partial = f", {counts['partial']} partial (source frames lost)" if counts.get("partial") else ""
    click.echo(f"{len(table)} videos: {counts.get('complete', 0)} complete{partial}, {counts.get('error', 0)} failed, "
               f"{counts.get('pending', 0)} pending; {os.path.join(os.path.normpath(out), 'videos.parquet')}")
    if table.attrs.get("interrupted"):  # the corpus run has said so, and that the same command resumes
        sys.exit(EXIT_INTERRUPTED)
    failed = table.loc[table["status"] == "error", "video_id"].tolist()
    if failed:
        more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
        click.echo(f"vidpipe: failed: {', '.join(failed[:10])}{more} (errors in videos.parquet)", err=True)
        sys.exit(EXIT_RUNTIME)


EXPORT_FORMATS = ("coco", "yolo", "cvat-video", "mot", "label-studio")  # vidpipe.export.FORMATS, not imported


@main.command("export")
@click.argument("run", type=click.Path(file_okay=False), metavar="OUT")
@click.option("--to", "to", type=click.Choice(EXPORT_FORMATS), required=True,
              help="coco and yolo: the frames as JPEG with their boxes; cvat-video, mot and label-studio: tracks, "
                   "for a labeling task made from the video.")
@click.option("--dest", type=click.Path(file_okay=False), required=True, help="A new (or empty) folder.")
@click.option("--min-score", type=float, default=0.0, show_default=True, help="Only boxes scoring at least this.")
@click.option("--classes", help="Only these classes (names, comma-separated).")
@click.option("--every", type=int, default=1, show_default=True, help="Every Nth processed frame only.")
@click.option("--confirmed-only", is_flag=True,
              help="Only the boxes of objects: tracks confirmed by the run (tracks.parquet's confirmed).")
@click.option("--split", help="Whole videos into splits by share, e.g. train=0.8,val=0.2 (never a video in two).")
@click.option("--absolute-paths", is_flag=True,
              help="Name the images (label-studio: the videos) by absolute path (default: relative).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def export_command(run: str, to: str, dest: str, min_score: float, classes: str | None, every: int,
                   confirmed_only: bool, split: str | None, absolute_paths: bool, quiet: bool) -> None:
    """Export a run's folder, or a corpus's videos, to a labeling or training format.

    The pictures are decoded again from the source at the rows' frame indices (the ones the detector saw);
    a source that has moved or changed since the run is refused."""
    from .export import export

    wanted = [c.strip() for c in classes.split(",") if c.strip()] if classes is not None else []
    if classes is not None and not wanted:
        raise InputError("--classes '' names no class")
    counts = export(run, to, dest, min_score=min_score, classes=wanted, every=every, split=split,
                    absolute=absolute_paths, confirmed_only=confirmed_only, progress=not quiet)
    click.echo(f"{to}: " + ", ".join(f"{n} {what}" for what, n in counts.items()) + f" in {dest}")


@main.command()
def models() -> None:
    """List the detector backends, whether each can load, the default model and the presets."""
    from .config import PipelineConfig, presets
    from .detectors import available

    click.echo("detector backends (--detector):")
    for name, entry in sorted(available().items()):
        try:
            backend = entry.load()
            problem, model = backend.check(), backend.default_model
        except ImportError as exc:
            problem, model = str(exc), "?"
        if os.path.isfile(model):
            model = f"{model} ({os.path.getsize(model) / 1e6:.1f} MB)"
        default = " [default]" if name == PipelineConfig().detector else ""
        click.echo(f"  {name}{default}: {'ok' if problem is None else 'unavailable: ' + problem}")
        click.echo(f"      {entry.value}; default model {model}")
    click.echo(f"presets (--pipeline): {', '.join(sorted(presets()))}")


@main.group("eval")
def eval_group() -> None:
    """Measure accuracy: tracking on MOTChallenge sequences, detection on labelled images."""


@eval_group.command("mot")
@click.argument("sequences", nargs=-1, required=True, type=click.Path(file_okay=False), metavar="SEQ_DIR...")
@click.option("--tracker", help="Tracker to evaluate [default: bytetrack].")
@click.option("-p", "--pipeline", help="Preset whose tracker (and, with --detect, detector) settings to use.")
@click.option("--detect", is_flag=True, help="Track vidpipe's detections of img1/ instead of det/det.txt.")
@click.option("-m", "--model", help="With --detect: the model [default: the bundled yolov8n.pt].")
@click.option("--conf", type=float, help="With --detect: detection threshold.")
@click.option("--imgsz", type=int, help="With --detect: inference size.")
@click.option("--device", help="With --detect: cpu, cuda...")
@RUNTIME_OPTION
@PRECISION_OPTION
@click.option("--detect-every", type=int, help="With --detect: detect on every Kth frame, the tracker predicts the "
                                               "rest (scored on every frame).")
@click.option("-o", "--out", type=click.Path(file_okay=False), default="runs/eval-mot", show_default=True,
              help="Folder for <sequence>.txt tracks and mot_metrics.csv/json.")
def eval_mot(sequences: tuple[str, ...], tracker: str | None, pipeline: str | None, detect: bool, out: str,
             **detector_options) -> None:
    """Track MOTChallenge sequences and score them: HOTA, DetA, AssA (TrackEval); MOTA, IDF1, IDSW, Frag (motmetrics).

    Each SEQ_DIR holds gt/gt.txt, det/det.txt (or img1/ with --detect) and seqinfo.ini. The tracker sees only
    the detections; the ground truth is used for scoring alone.
    """
    from pathlib import Path

    from .evaluation import require

    require("trackeval", "motmetrics")
    from .config import PipelineConfig
    from .evaluation import mot
    from .evaluation.motchallenge import MotSequence
    from .pipeline import Pipeline
    from .sources import open_source
    from .tracking import create_tracker, det_txt_params

    config = PipelineConfig.load(pipeline, tracker=tracker, classes=["person"] if detect else None,
                                 **detector_options)
    if config.tracker == "none":
        raise InputError("vidpipe eval mot needs a tracker (--tracker bytetrack)")
    seqs = [MotSequence.open(path, need_images=detect) for path in sequences]
    detector = Pipeline(config) if detect else None
    runs = []
    for seq in seqs:
        stream = detector.frames(open_source(seq.image_dir, fps=seq.fps)) if detector else seq.detections()
        params = config.tracker_params() if detect else det_txt_params(config.tracker, config.tracker_params())
        tracker_ = create_tracker(config.tracker, seq.fps, params)
        stream = mot.every_kth(stream, config.detect_every)
        runs.append(mot.track(seq, tracker_, stream, Path(out) / f"{seq.name}.txt"))
    table = mot.score(runs)
    _write_results(table, Path(out), "mot_metrics")
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    click.echo(f"tracks and metrics in {out}")


@eval_group.command("det")
@click.argument("images", type=click.Path(file_okay=False))
@click.argument("labels", type=click.Path(file_okay=False))
@click.option("-p", "--pipeline", help="Preset whose detector settings to use.")
@click.option("--detector", help="Detector backend [default: yolo].")
@click.option("-m", "--model", help="Model [default: the backend's default].")
@click.option("--conf", type=float, default=0.001, show_default=True, help="Detection threshold (low, for AP).")
@click.option("--iou", type=float, help="NMS IoU threshold.")
@click.option("--merge-iou", type=float, default=0.0, show_default=True,
              help="Score with boxes of two classes this alike merged, as tracked runs merge them (0: the "
                   "detector's output as it is).")
@click.option("--imgsz", type=int, help="Inference size.")
@click.option("--device", help="cpu, cuda...")
@RUNTIME_OPTION
@PRECISION_OPTION
@click.option("-o", "--out", type=click.Path(file_okay=False), default="runs/eval-det", show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def eval_det(images: str, labels: str, pipeline: str | None, out: str, quiet: bool, **detector_options) -> None:
    """Detection AP@0.5 and AP@0.5:0.95 (pycocotools) on IMAGES with YOLO-format LABELS (same tree)."""
    from pathlib import Path

    from .evaluation import require

    require("pycocotools")
    import pandas as pd

    from .config import PipelineConfig
    from .evaluation.det import evaluate, labelled_images
    from .pipeline import Pipeline

    pairs = labelled_images(images, labels)
    merge_iou = detector_options.pop("merge_iou")
    config = PipelineConfig.load(pipeline, tracker="none", merge_iou=merge_iou, **detector_options)
    detector = Pipeline(config).detector
    scores = evaluate(detector, pairs, progress=not quiet, merge_iou=config.merge_iou)
    result = {"detector": config.detector, "model": detector.model, "runtime": detector.runtime,
              "precision": detector.precision, "imgsz": config.imgsz, "conf": config.conf,
              "merge_iou": config.merge_iou, **scores}
    _write_results(pd.DataFrame([result]), Path(out), "det_metrics")
    click.echo(f"{result['images']} images, {result['objects']} objects: AP50 {result['AP50']:.2f}, "
               f"AP50-95 {result['AP50_95']:.2f}")


def _write_results(table, out, stem: str) -> None:
    """A metrics table as CSV and JSON (records), each written whole."""
    import json

    from .files import write_atomic
    from .sinks import write_table

    write_table(table, out / f"{stem}.csv", "csv")
    write_atomic(out / f"{stem}.json", json.dumps(table.to_dict(orient="records"), indent=2) + "\n")

"""The `vidpipe` command. Heavy modules are imported inside commands so `vidpipe --help` stays instant."""

from __future__ import annotations

import logging
import os
import sys

import click

from . import __version__
from .errors import InputError, VidpipeError

EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class _Group(click.Group):
    """Turns vidpipe's errors into one line on stderr and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            _fail(str(exc), EXIT_USAGE)
        except VidpipeError as exc:
            _fail(str(exc), EXIT_RUNTIME)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("VIDPIPE_DEBUG"):
                raise
            _fail(f"unexpected {type(exc).__name__}: {exc} (set VIDPIPE_DEBUG=1 for the traceback)", EXIT_RUNTIME)


def _fail(message: str, code: int) -> None:
    click.echo(f"vidpipe: error: {message}", err=True)
    sys.exit(code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="vidpipe")
def main() -> None:
    """Detect, track and label objects in videos; write annotated videos and detection tables."""
    logging.basicConfig(format="vidpipe: %(message)s", level=logging.INFO)


@main.command()
@click.argument("input", metavar="INPUT")
@click.option("-o", "--out", type=click.Path(file_okay=False), help="Output folder [default: runs/<input name>].")
@click.option("-p", "--pipeline", help="Preset pipeline: a YAML file or a shipped name (default, traffic, people).")
@click.option("--detector", help="Detector backend [default: yolo].")
@click.option("-m", "--model", help="Model file or name [default: the bundled models/yolov8n.pt].")
@click.option("--conf", type=float, help="Detection score threshold [default: 0.25; 0.1 when tracking].")
@click.option("--iou", type=float, help="NMS IoU threshold [default: 0.7].")
@click.option("--imgsz", type=int, help="Inference image size [default: 640].")
@click.option("--device", help="cpu, cuda, cuda:0, mps... [default: best available].")
@click.option("--classes", help="Only these classes: names or ids, comma-separated (e.g. person,car).")
@click.option("--batch-size", type=int, help="Frames per inference batch [default: 8].")
@click.option("--tracker", help="bytetrack or none [default: bytetrack].")
@click.option("--trails/--no-trails", default=None, help="Draw motion trails of tracks.")
@click.option("--video/--no-video", default=None, help="Write the annotated video [default: yes].")
@click.option("--table-format", type=click.Choice(["parquet", "csv"]), help="Table format [default: parquet].")
@click.option("--mot/--no-mot", default=None, help="Write tracks as MOTChallenge txt [default: yes].")
@click.option("--stride", type=int, help="Process every Nth frame.")
@click.option("--sample-fps", type=float, help="Process frames at this rate, picked by timestamp (e.g. 1).")
@click.option("--start", type=float, help="Start at this time (seconds).")
@click.option("--end", type=float, help="Stop at this time (seconds).")
@click.option("--max-frames", type=int, help="Stop after this many processed frames.")
@click.option("--fps", type=float, help="Frame rate of an image sequence [default: seqinfo.ini, else 30].")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def run(input: str, out: str | None, pipeline: str | None, quiet: bool, **options) -> None:
    """Run detection and tracking on INPUT and write the outputs.

    INPUT is a video file (anything FFmpeg reads), a stream URL, a folder or glob of images, a single
    image, or an image URL.
    """
    from .pipeline import Pipeline, PipelineConfig

    config = PipelineConfig.load(pipeline, **options)
    result = Pipeline(config).run(input, out, progress=not quiet)
    s = result.summary
    click.echo(
        f"{s['frames_processed']} frames in {s['wall_time_s']:.1f} s ({s['fps']} fps): "
        f"{s['detections']} detections, {s['tracks']} tracks"
    )
    width = max(len(k) for k in result.outputs)
    for key, path in result.outputs.items():
        click.echo(f"  {key:<{width}}  {path}")
    if result.interrupted:
        click.echo("vidpipe: interrupted: the outputs cover the frames processed so far", err=True)
        sys.exit(EXIT_INTERRUPTED)


@main.command()
def models() -> None:
    """List the detector backends, whether each can load, the default model and the presets."""
    from .detectors import available
    from .pipeline import PipelineConfig, presets

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

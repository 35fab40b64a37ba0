"""The docs say what the code does: the schemas page lists every column written, the site builds strictly,
the README stays short and points at pictures the repository makes, and the version agrees everywhere."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from conftest import REPO, SUBURBAN, run_cli

DOCS = REPO / "docs"
REGIONS = ("--line", "road=0,0.55,1,0.55", "--zone", "near=0,0.5,1,0.5,1,1,0,1")
# Arrow's type names, as the schemas page writes them
TYPE_NAMES = {"large_string": "string", "double": "float64", "float": "float32",
              "timestamp[us, tz=UTC]": "timestamp[us, UTC]"}


def documented_schemas() -> dict[str, dict[str, str]]:
    """docs/outputs.md's column tables, by table (`### detections.parquet`: detections): {column pattern: type}."""
    page = (DOCS / "outputs.md").read_text()
    schemas = {}
    for section in re.split(r"\n(?=### )", page):
        heading = re.match(r"### (\w+)\.parquet\n", section)
        rows = re.findall(r"^\| `([^`]+)` \| ([^|]+?) \|", section, re.M)
        if heading and "| column | type | meaning |" in section:
            schemas[heading.group(1)] = dict(rows)
    return schemas


def pattern(column: str) -> re.Pattern:
    """`n_<class>` matches `n_car`, `n_traffic_light`: a name in angle brackets stands for a family."""
    return re.compile("".join(r"\w+" if part.startswith("<") else re.escape(part)
                              for part in re.split(r"(<\w+>)", column)) + "$")


def check_schema(schema, documented: dict[str, str], where: str, seen: set[str]) -> None:
    """Every column of `schema` matches one documented column of the same type; `seen` collects which."""
    for name, kind in zip(schema.names, schema.types):
        matches = [column for column in documented if pattern(column).match(name)]
        assert matches, f"{where}: column {name!r} is not on docs/outputs.md"
        column = min(matches, key=lambda c: ("<" in c, -len(c)))  # `near_n` before `n_<class>`
        actual = TYPE_NAMES.get(str(kind), str(kind))
        assert documented[column] == actual, f"{where}: {name} is {actual}, docs/outputs.md says {documented[column]}"
        seen.add(column)


def test_every_column_written_is_on_the_schemas_page_with_its_type(tmp_path):
    """A sampled run with a line and a zone, a live run and a corpus: every table they write, against the page;
    and every column the page lists is written by one of them."""
    run, live, corpus = tmp_path / "run", tmp_path / "live", tmp_path / "corpus"
    sampled = ("--sample-fps", "5", "--no-video", "--no-report", "-q", *REGIONS)
    for args in (("run", str(SUBURBAN), "-o", str(run), "--max-frames", "20", *sampled),
                 ("live", str(SUBURBAN), "-o", str(live), "--max-frames", "10", "-q", *REGIONS),
                 ("batch", str(SUBURBAN), "-o", str(corpus), "--end", "4", *sampled)):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
    documented = documented_schemas()
    seen: dict[str, set[str]] = {key: set() for key in documented}
    tables = [path for folder in (run, live, corpus / "videos" / "suburban-traffic")
              for path in sorted(folder.glob("*.parquet"))]
    assert {path.stem for path in tables} >= {"detections", "frames", "tracks", "events", "visits", "presence",
                                               "segments"}
    for path in tables:
        check_schema(pq.read_schema(path), documented[path.stem], str(path), seen[path.stem])
    for name in ("detections", "frames", "tracks", "events", "visits"):  # the corpus datasets: video_id for video
        renamed = {("video_id" if column == "video" else column): kind for column, kind in documented[name].items()}
        check_schema(ds.dataset(corpus / name).schema, renamed, f"OUT/{name}/", set())
    for name in ("presence", "segments"):
        check_schema(ds.dataset(corpus / name).schema, documented[name], f"OUT/{name}/", set())
    check_schema(pq.read_schema(corpus / "videos.parquet"), documented["videos"], "videos.parquet", seen["videos"])
    for name, columns in documented.items():
        assert set(columns) == seen[name], f"docs/outputs.md lists {set(columns) - seen[name]} in {name}, never written"


def test_the_docs_site_builds_strictly_without_a_warning(tmp_path):
    """mkdocs --strict: a broken link or anchor, a missing page, an API name or CLI command the code no longer
    has, fails (.ci/run builds it too)."""
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("needs mkdocs-material, mkdocstrings and mkdocs-click: pip install -e '.[docs]'")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0 and "WARNING" not in result.stderr, result.stderr
    cli = (tmp_path / "cli" / "index.html").read_text()
    assert all(f"vidpipe {command}" in cli for command in ("run", "live", "batch", "export", "eval mot"))
    api = (tmp_path / "api" / "index.html").read_text()
    assert "LineCounter" in api and "RunSummary" in api


def test_the_readme_is_short_and_its_pictures_are_the_scripts():
    """At most 250 lines; the pictures it shows are the ones docs/make_pictures.py writes, small; the
    quickstart is the same in the README and on the Getting started page."""
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    script = (DOCS / "make_pictures.py").read_text()
    assert len(pictures) == 2 and all(Path(p).name in script for p in pictures), pictures
    assert sum((REPO / p).stat().st_size for p in pictures) < 400_000
    quickstart = re.findall(r"```bash\n(pip install .*?)\n```", readme)
    assert len(quickstart) == 2 and all(c in (DOCS / "getting-started.md").read_text() for c in quickstart)


def test_no_text_reads_like_a_lab_notebook():
    """Figures carry dates and machines, not "this session" or "the last stop"."""
    notebook = re.compile(r"this\s+(stop|session)|last\s+stop|before\s+this\s+change", re.I)
    files = [REPO / "README.md", REPO / "CHANGELOG.md", *DOCS.rglob("*.md"), *(REPO / "src").rglob("*.py"),
             *(REPO / "bench").rglob("*.py")]
    found = [f"{path}: {m.group(0)!r}" for path in files for m in notebook.finditer(path.read_text())]
    assert not found, found


def test_the_version_agrees_with_pyproject_and_the_changelog():
    """`vidpipe --version` prints pyproject's version, which is the changelog's latest release."""
    (version,) = re.findall(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.M)
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"vidpipe, version {version}", result.stdout
    releases = re.findall(r"^## \[(\d[^\]]*)\] - \d{4}-\d{2}-\d{2}$", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert releases and releases[0] == version, releases

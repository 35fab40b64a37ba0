"""report.html, opened in a real headless browser: every section there, every picture decoded, no console
error, a page that is not blank, and numbers equal to summary.json's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import PARKING, SUBURBAN, run_cli

SECTIONS = ["answers", "facts", "video", "classes-over-time", "timeline", "thumbnails", "detections-per-class",
            "scores"]


@pytest.fixture(scope="module")
def run_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    result = run_cli("run", str(SUBURBAN), "-o", str(out), "--max-frames", "120", "-q")
    assert result.returncode == 0, result.stderr
    assert f"report      {out / 'report.html'}" in result.stdout
    return out


def open_page(browser, path):
    browser.get(path.as_uri())
    browser.implicitly_wait(2)
    return browser


def assert_renders(browser, sections: list[str]) -> np.ndarray:
    """No console error; the sections; every <img> decoded; every chart drawn; a screenshot with content."""
    import cv2

    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    present = [s.get_attribute("id") for s in browser.find_elements("tag name", "section")]
    assert present == sections
    images = browser.execute_script("return Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert all(done and width > 0 for done, width in images), images
    charts = browser.execute_script("return Array.from(document.querySelectorAll('svg')).map(s => s.getBBox().width)")
    assert charts and all(width > 100 for width in charts), charts
    png = browser.get_screenshot_as_png()
    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert picture.std() > 20  # text, charts and pictures, not a blank page
    return picture


def test_the_run_report_renders_in_a_browser(run_report, browser):
    page = open_page(browser, run_report / "report.html")
    assert_renders(page, SECTIONS)
    thumbnails = page.find_elements("css selector", "#thumbnails figure")
    assert 1 <= len(thumbnails) <= 12 and "car #" in thumbnails[0].text
    video = page.find_element("css selector", "#video video")
    assert video.get_attribute("src").endswith("annotated.mp4")
    assert page.execute_script("return document.querySelector('#video video').duration") > 4  # it loads and plays


def test_the_report_says_what_summary_json_says(run_report):
    summary = json.loads((run_report / "summary.json").read_text())
    text = (run_report / "report.html").read_text()
    for fact, value in (("frames-processed", summary["frames_processed"]), ("detections", summary["detections"]),
                        ("objects", summary["tracks"]), ("tracks-never-confirmed", summary["unconfirmed_tracks"]),
                        ("source-frames-lost", summary["source_frames_lost"])):
        assert f'id="fact-{fact}">{value:,}<' in text, fact
    assert f'id="fact-status">{summary["status"]}<' in text
    assert f'{summary["detector"]["runtime"]} ({summary["detector"]["precision"]})' in text
    tracks = pd.read_parquet(run_report / "tracks.parquet")
    for name, count in pd.read_parquet(run_report / "detections.parquet")["class_name"].value_counts().items():
        assert f"<title>{name}: {count:,}</title>" in text  # the bar chart's numbers are the table's
    assert len(tracks) == summary["tracks"]
    report = next(s for s in summary["stages"] if s["stage"] == "report")
    assert report["busy_fraction"] < 0.05  # built from the tables: a small part of the run


def test_a_corpus_report_lists_every_video_sorts_and_names_failures(tmp_path, browser):
    manifest = tmp_path / "list.csv"
    manifest.write_text(f"video_id,path\n0123,{PARKING}\nstreet,{SUBURBAN}\nbroken,{tmp_path / 'none.mp4'}\n")
    out = tmp_path / "corpus"
    result = run_cli("batch", str(manifest), "-o", str(out), "--max-frames", "30", "--no-video", "-q")
    assert result.returncode == 1  # one video failed
    page = open_page(browser, out / "report.html")
    assert_renders(page, ["videos", "class-totals", "longest", "failures"])
    def rows() -> list[str]:
        return [r.find_element("tag name", "td").text for r in page.find_elements("css selector", "#videos tbody tr")]

    assert rows() == ["0123", "street", "broken"]
    page.find_elements("css selector", "#videos th")[5].click()  # tracks, ascending
    assert rows()[-1] == "street"
    assert "none.mp4 does not exist" in page.find_element("id", "failures").text
    link = page.find_element("link text", "street").get_attribute("href")
    assert link.endswith("videos/street/report.html") and (out / "videos" / "street" / "report.html").is_file()


def test_no_report_writes_none(tmp_path):
    result = run_cli("run", str(SUBURBAN), "-o", str(tmp_path), "--max-frames", "5", "--no-report", "-q")
    assert result.returncode == 0 and not (tmp_path / "report.html").exists()
    assert "report" not in json.loads((tmp_path / "summary.json").read_text())["outputs"]

"""Make the README's and the docs' pictures from the bundled clip, so they show what vidpipe really writes.

    python docs/make_pictures.py

runs `vidpipe run` on `sample_videos/suburban-traffic.mp4` with a counting line and a zone (the README's
offline example), then writes `docs/images/annotated-frame.jpg` (the frame of `annotated.mp4` with the most
cars in the zone) and `docs/images/report-answers.png` (the Answers section of `report.html`, screenshotted
by Debian's headless chromium through Selenium). Nobody edits the pictures by hand: a change to the drawing
or the report is one run of this script away.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import cv2
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO / "sample_videos" / "suburban-traffic.mp4"
IMAGES = REPO / "docs" / "images"
# The README's "offline analysis" example: a line across the road, a zone over the near lane.
REGIONS = ["--line", "road=0,0.55,1,0.55", "--zone", "near=0.36,0.58,0.66,0.58,1,0.82,1,1,0.45,1"]
WIDTH = 960  # pixels: sharp on a docs page, a few hundred KB at most for both pictures


def run_vidpipe(out: Path) -> None:
    """The run the pictures show (the whole clip, so the Answers are the clip's)."""
    command = [sys.executable, "-m", "vidpipe", "run", str(CLIP), "-o", str(out), *REGIONS, "-q"]
    subprocess.run(command, check=True)


def busiest_time(frames_table: Path) -> float:
    """The time of the first frame with the most cars in the zone (then the most detections): a frame that
    shows what the counts mean."""
    frames = pd.read_parquet(frames_table, columns=["time_s", "near_n", "n_detections"])
    return float(frames.sort_values(["near_n", "n_detections", "time_s"], ascending=[False, False, True])
                 .iloc[0]["time_s"])


def save_frame(video: Path, at_s: float, dest: Path) -> None:
    """The annotated video's first frame at or after `at_s`, scaled to WIDTH, as a JPEG."""
    with av.open(str(video)) as container:
        image = next(frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)
                     if frame.time is not None and frame.time >= at_s - 1e-6)
    height = round(image.shape[0] * WIDTH / image.shape[1])
    image = cv2.resize(image, (WIDTH, height), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(dest), image, [cv2.IMWRITE_JPEG_QUALITY, 82])


def screenshot_answers(report: Path, dest: Path) -> None:
    """The report's Answers section, as headless chromium renders it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        raise SystemExit("make_pictures: needs Debian's chromium and chromium-driver (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=900,1000", "--hide-scrollbars"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(driver))
    try:
        browser.get(report.as_uri())
        browser.find_element(By.ID, "answers").screenshot(str(dest))
    finally:
        browser.quit()


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        run_vidpipe(out)
        save_frame(out / "annotated.mp4", busiest_time(out / "frames.parquet"), IMAGES / "annotated-frame.jpg")
        screenshot_answers(out / "report.html", IMAGES / "report-answers.png")
    for picture in ("annotated-frame.jpg", "report-answers.png"):
        print(f"{IMAGES / picture}: {(IMAGES / picture).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()

"""Make docs/screenshots/*.png (see scripts/screenshots): the runs list, a run page and an
image view, each at desktop and phone widths, from the demo's own runs."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from bluebroker.catalog import open_catalog
from bluebroker.ingest import CatalogWriter
from bluebroker.ingest.demo import Acquisition
from bluebroker.server.run import background_server

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
WAIT_MS = 60_000
DRAWN = "[data-testid=plot-points]:not([data-count='0'])"  # the plot has its points


def acquire(folder: Path, runs: int):
    catalog = open_catalog(f"sqlite:///{folder}/catalog.db", create=True, data_roots=[folder])
    acquisition = Acquisition(CatalogWriter(catalog, "bmm/raw"), folder / "files", report=print)
    try:
        acquisition.run(runs, 0)
    finally:
        acquisition.stop()
    return catalog


def newest(url: str, key: str, query: dict) -> str:
    """The uid of the newest run matching ``query`` (filters of the HTTP API)."""
    params = {"sort": "-time", "page[limit]": "1", **query}
    found = httpx.get(f"{url}/api/v1/search/bmm/raw", params=params, headers={
        "Authorization": f"Apikey {key}"}).raise_for_status().json()["data"]
    return found[0]["id"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--runs", type=int, default=12, help="demo runs to acquire first")
    parser.add_argument("--chromium", default=os.environ.get("BLUEBROKER_TEST_CHROMIUM",
                                                             "/usr/bin/chromium"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as tmp:
        catalog = acquire(Path(tmp), args.runs)
        with background_server(catalog, api_key=key) as url:
            scan = newest(url, key, {"filter[eq][condition][key]": '"plan_name"',
                                     "filter[eq][condition][value]": '"scan"'})
            cam = newest(url, key, {"filter[contains][condition][key]": '"detectors"',
                                    "filter[contains][condition][value]": '"cam"'})
            views = {
                "runs": ("/browse/bmm/raw", "[data-testid=run-row]"),
                "run": (f"/browse/bmm/raw/{scan}", DRAWN),
                "image": (f"/browse/bmm/raw/{cam}/primary/data/cam", "[data-testid=array-canvas]"),
            }
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=args.chromium, headless=True, args=ARGS
                )
                for size, viewport in SIZES.items():
                    context = browser.new_context(viewport=viewport, color_scheme="light")
                    page = context.new_page()
                    page.goto(f"{url}/?token={key}")
                    for name, (path, ready) in views.items():
                        page.goto(url + path)
                        page.wait_for_selector(ready, timeout=WAIT_MS)
                        page.wait_for_load_state("load")
                        target = args.out / f"{name}-{size}.png"
                        page.screenshot(path=str(target))
                        print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)
                    context.close()
                browser.close()
        catalog.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

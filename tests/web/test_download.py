"""The Download tab in real Chromium: the file a person gets is the data, in the chosen format,
with the chosen columns or slice (read through Playwright's download API)."""

from __future__ import annotations

import csv
import json

import numpy as np
from playwright.sync_api import expect


def _primary_events(docs) -> list[dict]:
    (descriptor,) = [d for n, d in docs if n == "descriptor" and d.get("name") == "primary"]
    return [d for n, d in docs if n == "event" and d["descriptor"] == descriptor["uid"]]


def assert_csv_is_the_scan(path, docs) -> None:
    """The downloaded CSV of the scan's det1 and motor holds its primary events' values."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    events = _primary_events(docs)
    assert len(rows) == len(events) == 11
    assert set(rows[0]) == {"seq_num", "det1", "motor"}
    for row, event in zip(rows, events, strict=True):
        assert int(row["seq_num"]) == event["seq_num"]
        assert float(row["det1"]) == event["data"]["det1"]
        assert float(row["motor"]) == event["data"]["motor"]


def test_csv_of_chosen_columns(page, web_url, beamline):
    scan_uid = next(iter(beamline))
    page.goto(f"{web_url}/browse/bmm/raw/{scan_uid}/primary/data")
    page.get_by_test_id("tab-download").click()
    page.get_by_test_id("download-format").select_option("csv")
    page.get_by_test_id("download-column-det1").check()
    page.get_by_test_id("download-column-motor").check()
    link = page.get_by_test_id("download-url")
    expect(link).to_have_value(
        f"{web_url}/api/v1/table/full/bmm/raw/{scan_uid}/primary/data"
        "?format=csv&column=det1&column=motor"
    )
    expect(page).to_have_url(f"{web_url}/browse/bmm/raw/{scan_uid}/primary/data"
                             "?tab=download&format=csv&columns=det1%2Cmotor")
    with page.expect_download() as info:
        page.get_by_test_id("download-link").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    assert_csv_is_the_scan(download.path(), beamline[scan_uid])


def test_array_slice_and_a_bad_slice(page, web_url, beamline):
    cam_uid = list(beamline)[1]
    page.goto(f"{web_url}/browse/bmm/raw/{cam_uid}/primary/data/cam?tab=download")
    expect(page.get_by_text("If blank, access entire array")).to_be_visible()
    page.get_by_test_id("download-format").select_option("json")
    page.get_by_test_id("download-slice").fill("2, 1:3")
    with page.expect_download() as info:
        page.get_by_test_id("download-link").click()
    with open(info.value.path()) as f:
        got = np.array(json.load(f))
    np.testing.assert_array_equal(got, beamline["frames"]["cam"][2, 1:3])
    page.get_by_test_id("download-slice").fill("2;5")
    expect(page.get_by_test_id("download-problem")).to_contain_text('"2;5" is not a slice')
    expect(page.get_by_test_id("download-link")).to_have_attribute("aria-disabled", "")


def test_run_downloads(page, web_url, beamline):
    scan_uid = next(iter(beamline))
    page.goto(f"{web_url}/browse/bmm/raw/{scan_uid}?tab=download")
    options = page.get_by_test_id("download-format").locator("option")
    expect(options).to_have_count(1)  # a run is one HDF5 file
    expect(options.first).to_contain_text("application/x-hdf5")
    expect(page.get_by_test_id("documents-download")).to_contain_text("jsonl")
    page.goto(f"{web_url}/browse/bmm?tab=download")
    expect(page.get_by_test_id("no-download")).to_be_visible()

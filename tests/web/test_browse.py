"""Browsing in real Chromium: the runs list, breadcrumbs, search, sorting, paging, errors."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def test_runs_list_shows_the_runs(page, web_url, beamline):
    page.goto(f"{web_url}/browse/bmm/raw")
    rows = page.get_by_test_id("run-row")
    expect(rows).to_have_count(4)
    uids = [u for u in beamline if u != "frames"]
    # newest first by default; each row names its run and links to it
    assert [rows.nth(i).get_attribute("data-uid") for i in range(4)] == uids[::-1]
    first = rows.nth(3)
    expect(first).to_contain_text("scan")
    expect(first).to_contain_text("Cu")
    expect(first).to_contain_text("success")
    expect(first.locator("td[data-label=Events]")).to_have_text(re.compile(r"^11\b"))

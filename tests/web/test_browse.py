"""Browsing in real Chromium: the runs list, breadcrumbs, search, sorting, paging, the run and
table pages, the node tabs, errors in words and the phone width."""

from __future__ import annotations

import json
import re
import subprocess

from playwright.sync_api import expect

from tests.conftest import TEST_KEY


def _uids(beamline) -> list[str]:
    return [uid for uid in beamline if uid != "frames"]


def _expect_rows(page, uids: list[str]) -> None:
    """Wait until the list shows exactly these runs, in this order (a new list replaces the
    old one when its page arrives, so counting rows alone could see the old list)."""
    rows = page.get_by_test_id("run-row")
    expect(rows).to_have_count(len(uids))
    for i, uid in enumerate(uids):
        expect(rows.nth(i)).to_have_attribute("data-uid", uid)


def test_runs_list_shows_the_runs(page, web_url, beamline):
    page.goto(f"{web_url}/browse/bmm/raw")
    rows = page.get_by_test_id("run-row")
    uids = _uids(beamline)
    _expect_rows(page, uids[::-1])  # newest first by default
    scan = rows.nth(3)
    expect(scan).to_contain_text("scan")
    expect(scan).to_contain_text("Cu")
    expect(scan.locator("td.status")).to_have_text("success")
    expect(scan.locator("td[data-label=Events]")).to_have_text("11 (13)")  # primary (all)


API_ENTRIES = """() => performance.getEntriesByType('resource')
  .filter((e) => new URL(e.name).pathname.match(/^.api.v1.(metadata|search)./))
  .map((e) => [new URL(e.name).pathname.split('/')[3], e.startTime, e.responseEnd])"""


def test_a_second_visit_asks_for_the_runs_beside_the_metadata(page, web_url, beamline):
    """The list's page of runs is asked for once the node is known to be a catalog of runs;
    the same list opened again sends that request at once, beside the metadata request."""
    uids = _uids(beamline)
    timings = []
    for _visit in range(2):
        page.goto(f"{web_url}/browse/bmm/raw?sort=scan_id")
        _expect_rows(page, uids)
        timings.append(page.evaluate(API_ENTRIES))
    for visit, entries in enumerate(timings):
        assert sorted(kind for kind, _, _ in entries) == ["metadata", "search"], entries
        (search_start,) = [start for kind, start, _ in entries if kind == "search"]
        (metadata_end,) = [end for kind, _, end in entries if kind == "metadata"]
        assert (search_start < metadata_end) == (visit == 1), (visit, entries)
    page.get_by_test_id("sort-scan_id").click()  # then the list goes on as usual
    _expect_rows(page, uids[::-1])


def test_breadcrumbs_lead_to_a_run_and_back(page, web_url, beamline):
    scan_uid = _uids(beamline)[0]
    page.goto(web_url)  # the root: any container is listed by name, family and shape
    page.get_by_test_id("child-list").get_by_role("link", name="bmm").click()
    page.get_by_test_id("child-list").get_by_role("link", name="raw").click()
    expect(page).to_have_url(f"{web_url}/browse/bmm/raw")
    page.locator(f"[data-testid=run-row][data-uid='{scan_uid}'] a").first.click()
    expect(page).to_have_url(f"{web_url}/browse/bmm/raw/{scan_uid}")
    expect(page.get_by_test_id("run-status")).to_have_text("success")
    streams = page.get_by_test_id("stream")
    expect(streams).to_have_count(2)
    expect(page.locator("[data-stream=primary] [data-testid=field]")).to_have_count(4)
    page.locator("[data-stream=primary]").get_by_role("link", name="det1").click()
    crumbs = page.get_by_test_id("breadcrumbs")
    expect(crumbs).to_have_text(re.compile(r"Top / bmm / raw / \w{8}… / primary / data / det1"))
    crumbs.get_by_role("link", name="raw").click()
    expect(page.get_by_test_id("run-row")).to_have_count(4)
    page.go_back()  # history walks the views
    expect(page).to_have_url(re.compile(r"/primary/data/det1$"))


def test_search_box_and_quick_filters(page, web_url, beamline):
    uids = _uids(beamline)
    page.goto(f"{web_url}/browse/bmm/raw")
    box = page.get_by_test_id("search-input")
    box.fill("sample=Fe")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"q=sample%3DFe"))
    _expect_rows(page, [uids[1]])
    box = page.get_by_test_id("search-input")
    box.fill("Si")  # free text: full-text search of the metadata
    box.press("Enter")
    _expect_rows(page, [uids[2]])
    page.get_by_test_id("run-row").first.locator("a").first.click()  # on to the run found
    expect(page).to_have_url(f"{web_url}/browse/bmm/raw/{uids[2]}")
    expect(page.get_by_test_id("run-status")).to_have_text("success")
    page.go_back()  # and back to the search, as it was
    expect(page.get_by_test_id("search-input")).to_have_value("Si")
    _expect_rows(page, [uids[2]])
    # a shared URL reproduces the view: quick filters by plan, scan id, status and time
    page.goto(f"{web_url}/browse/bmm/raw?plan=count")
    expect(page.get_by_test_id("run-row")).to_have_count(3)
    page.goto(f"{web_url}/browse/bmm/raw?scan_id=1,3")
    expect(page.get_by_test_id("run-row")).to_have_count(2)
    page.goto(f"{web_url}/browse/bmm/raw?status=running")
    expect(page.get_by_test_id("no-runs")).to_have_text("No runs match this search.")
    page.goto(f"{web_url}/browse/bmm/raw?since=2000-01-01&until=2000-01-02")
    expect(page.get_by_test_id("no-runs")).to_be_visible()
    page.goto(f"{web_url}/browse/bmm/raw?since=2000-01-01&status=success")
    expect(page.get_by_test_id("run-row")).to_have_count(4)
    # the API's own filter parameters pass through as they are
    page.goto(
        f"{web_url}/browse/bmm/raw?filter[eq][condition][key]=%22sample%22"
        "&filter[eq][condition][value]=%22Cu%22"
    )
    expect(page.get_by_test_id("run-row")).to_have_count(1)


def test_sort_by_column_and_page(page, web_url, beamline):
    uids = _uids(beamline)
    page.goto(f"{web_url}/browse/bmm/raw?limit=3")
    page.get_by_test_id("sort-scan_id").click()  # ascending by scan id
    expect(page).to_have_url(re.compile(r"sort=scan_id"))
    _expect_rows(page, uids[:3])
    expect(page.get_by_test_id("page-count")).to_have_text(re.compile(r"^1.3 of 4$"))
    page.get_by_role("link", name=re.compile(r"^Next")).click()
    _expect_rows(page, uids[3:])
    expect(page.get_by_test_id("page-count")).to_have_text(re.compile(r"^4.4 of 4$"))
    page.get_by_test_id("sort-scan_id").click()  # again: descending, from the first page
    _expect_rows(page, uids[::-1][:3])
    expect(page.get_by_test_id("page-count")).to_have_text(re.compile(r"^1.3 of 4$"))
    events = page.get_by_test_id("sort-summary.num_events.primary")  # runs of 11, 4, 3, 2
    events.click()
    _expect_rows(page, [uids[3], uids[2], uids[1]])
    events.click()
    _expect_rows(page, uids[:3])


def test_errors_are_shown_in_words(page, browser, web_url, beamline):
    page.goto(f"{web_url}/browse/bmm/raw/0000nothere")
    error = page.get_by_test_id("error")
    expect(error).to_contain_text("Not found (HTTP 404)")
    expect(error).to_contain_text("0000nothere")
    page.goto(f"{web_url}/browse/bmm/raw?sort=-starttime")
    expect(page.get_by_test_id("error")).to_contain_text("HTTP 400")
    expect(page.get_by_test_id("error")).to_contain_text("starttime")
    page.goto(f"{web_url}/browse/bmm/raw?scan_id=first")
    expect(page.get_by_test_id("error")).to_contain_text('scan id "first" is not a whole number')
    stranger = browser.new_context()  # never opened the token URL
    try:
        other = stranger.new_page()
        other.goto(f"{web_url}/browse/bmm/raw")
        expect(other.get_by_test_id("error")).to_contain_text("HTTP 401")
        expect(other.get_by_test_id("error")).to_contain_text("?token=")
        assert TEST_KEY not in other.content()
    finally:
        stranger.close()


def test_run_page_tabs_and_table(page, web_url, beamline):
    scan_uid = _uids(beamline)[0]
    run = f"{web_url}/browse/bmm/raw/{scan_uid}"
    page.goto(run)
    expect(page.get_by_test_id("start-tree")).to_contain_text('plan_name: "scan"')
    page.get_by_test_id("stop-doc").locator("summary").first.click()
    expect(page.get_by_test_id("stop-tree")).to_contain_text('exit_status: "success"')
    page.get_by_test_id("tab-metadata").click()
    expect(page).to_have_url(f"{run}?tab=metadata")
    expect(page.get_by_test_id("metadata-tree")).to_contain_text("summary")
    page.goto(f"{run}/primary/data/det1?tab=detail")
    expect(page.get_by_test_id("detail")).to_contain_text("(11)")
    expect(page.get_by_test_id("detail")).to_contain_text("float64")
    expect(page.get_by_test_id("python-snippet")).to_contain_text(
        f'c["bmm"]["raw"]["{scan_uid}"]["primary"]["data"]["det1"]'
    )
    expect(page.get_by_test_id("curl-snippet")).to_contain_text("/api/v1/array/full/bmm/raw/")
    events = [d for name, d in beamline[scan_uid] if name == "event" and "motor" in d["data"]]
    det1 = [d["data"]["det1"] for d in events]
    # the snippets work as they are (the tests' key is in BLUEBROKER_API_KEY)
    python = page.get_by_test_id("python-snippet").inner_text()
    scope: dict = {}
    exec(python.replace("node.read()", "got = node.read()"), scope)
    assert list(scope["got"]) == det1
    curl = page.get_by_test_id("curl-snippet").inner_text().splitlines()
    fetched = subprocess.run(
        ["bash", "-c", "\n".join(curl[2:]).replace(" -O -J", "")],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert json.loads(fetched.stdout) == det1
    page.goto(f"{run}/primary/data")
    grid = page.get_by_test_id("table-grid")
    expect(grid.locator("tbody tr")).to_have_count(11)
    motor = [d["data"]["motor"] for d in events]
    expect(grid.locator("tbody tr").nth(0)).to_contain_text(f"{motor[0]:g}")


def test_external_detector_has_data_sources(page, web_url, beamline):
    cam_run = _uids(beamline)[1]
    page.goto(f"{web_url}/browse/bmm/raw/{cam_run}/primary/data/cam?tab=detail")
    expect(page.get_by_test_id("detail")).to_contain_text("(4, 6, 5)")
    expect(page.get_by_test_id("data-sources")).to_contain_text(".h5")


def test_phone_width_has_no_sideways_scroll(phone_page, web_url, beamline):
    scan_uid = _uids(beamline)[0]
    run = f"/browse/bmm/raw/{scan_uid}"
    table = f"{run}/primary/data"
    views = ("/browse/bmm/raw", run, f"{run}?tab=metadata", table, f"{table}?tab=detail",
             f"{table}?tab=download")
    for path in views:
        phone_page.goto(web_url + path)
        expect(phone_page.locator("main section.tab-body > *").first).to_be_visible()
        phone_page.wait_for_load_state("networkidle")
        wide = phone_page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, f"{path} is {wide} px wide on a 390 px screen"
    phone_page.goto(f"{web_url}/browse/bmm/raw")
    row = phone_page.get_by_test_id("run-row").first
    expect(row.locator("td[data-label=Scan]")).to_be_visible()
    expect(row.locator("td[data-label=Status]")).to_be_visible()
    expect(row.locator("td[data-label=Sample]")).to_be_hidden()


def test_a_refresh_that_brings_the_same_page_redraws_nothing(page, web_url, beamline):
    """Once the list follows its catalog it asks for its page again (the subscription's first
    message); the same page must leave the table as it is, or a click pressed on a header link
    and released after the redraw would be lost (seen as a flaky sort click)."""
    page.goto(f"{web_url}/browse/bmm/raw?limit=3")
    _expect_rows(page, _uids(beamline)[::-1][:3])
    page.evaluate("() => { window.__table = document.querySelector('[data-testid=run-list]'); }")
    page.wait_for_function(  # the refresh has been answered
        """() => performance.getEntriesByType('resource')
          .filter((e) => new URL(e.name).pathname.startsWith('/api/v1/search/')).length >= 2"""
    )
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
    assert page.evaluate("() => window.__table.isConnected"), "the same page was drawn again"

"""A run seen while it acquires: an open runs list shows it as it starts, and the run page's
status turns to success when the run stops, in the same document (no reload). Real
RunEngine and Chromium."""

from __future__ import annotations

import asyncio
import threading

from playwright.sync_api import expect

DEADLINE = 60  # seconds: generous, the suite runs on a loaded machine


def held_count(det, gate):
    """One reading, then the run stays open until the test sets ``gate``."""
    from bluesky import plan_stubs as bps

    def wait():
        return asyncio.get_running_loop().run_in_executor(None, gate.wait, DEADLINE)

    yield from bps.open_run(md={"plan_name": "held_count", "sample": "live"})
    yield from bps.trigger_and_read([det])
    yield from bps.wait_for([wait])
    yield from bps.close_run()


def test_a_running_run_turns_to_success_without_reload(page, web_url, catalog, RE):
    from ophyd.sim import det

    from bluebroker.ingest import CatalogWriter

    gate, read = threading.Event(), threading.Event()
    uids: list[str] = []

    def watch(name, doc):  # after the writer: what this sees is written
        if name == "start":
            uids.append(doc["uid"])
        elif name == "event":
            read.set()

    tokens = [RE.subscribe(CatalogWriter(catalog, "bmm/raw")), RE.subscribe(watch)]
    failed: list[BaseException] = []

    def acquire():
        try:
            RE(held_count(det, gate))
        except BaseException as err:  # reported by the test, not lost in the thread
            failed.append(err)

    page.goto(f"{web_url}/browse/bmm/raw")
    rows = page.get_by_test_id("run-row")
    expect(rows).to_have_count(4)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    thread = threading.Thread(target=acquire, daemon=True)
    thread.start()
    try:
        assert read.wait(DEADLINE), "the reading was not taken"
        # the open list learns of the new run by itself (newest first: the top row)
        expect(rows).to_have_count(5)
        expect(rows.first).to_have_attribute("data-uid", uids[0])
        expect(rows.first.locator("td.status")).to_have_text("running")
        assert page.evaluate("window.__sameDocument") is True
        page.goto(f"{web_url}/browse/bmm/raw?status=running")
        expect(rows).to_have_count(1)
        expect(rows.first.locator("td.status")).to_have_text("running")
        rows.first.locator("a").first.click()
        expect(page.get_by_test_id("run-status")).to_have_text("running")
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        gate.set()
        thread.join(DEADLINE)
        assert not thread.is_alive() and not failed, failed
        expect(page.get_by_test_id("run-status")).to_have_text("success")
        page.get_by_test_id("stop-doc").locator("summary").first.click()
        expect(page.get_by_test_id("stop-tree")).to_contain_text('exit_status: "success"')
        assert page.evaluate("window.__sameDocument") is True
        assert f"/browse/bmm/raw/{uids[0]}" in page.url
    finally:
        gate.set()
        thread.join(DEADLINE)
        for token in tokens:
            RE.unsubscribe(token)

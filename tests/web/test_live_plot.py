"""The run page's plot grows while a RunEngine acquires, with no page reload, and says
"finished" when the run stops: real RunEngine, real server, real Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from types import SimpleNamespace

from playwright.sync_api import expect

POINTS = 4
DEADLINE = 60  # seconds: generous, the suite runs on a loaded machine


def gated_scan(motor, det, gates, opened=None):
    """A step scan that waits, after each point, until the test opens that point's gate (and,
    with ``opened``, also before the first point, when the run has no stream yet)."""
    from bluesky import plan_stubs as bps

    def wait(gate):
        return lambda: asyncio.get_running_loop().run_in_executor(None, gate.wait, DEADLINE)

    yield from bps.open_run(md={"motors": [motor.name], "plan_name": "gated_scan"})
    if opened is not None:
        yield from bps.wait_for([wait(opened)])
    for i, gate in enumerate(gates):
        yield from bps.mv(motor, i)
        yield from bps.trigger_and_read([motor, det])
        yield from bps.wait_for([wait(gate)])
    yield from bps.close_run()


@contextlib.contextmanager
def gated_run(catalog, RE) -> Iterator[SimpleNamespace]:
    """A gated_scan of ``POINTS`` points acquiring in a thread, written into ``catalog``'s
    bmm/raw by the one writer. Yields ``gates`` (the test opens each point's), ``events`` (set
    once a point is written), ``uids`` and ``finish()`` (open the last gate, wait for the run's
    end, raise what the RunEngine raised); every gate is opened and the thread joined on exit."""
    from ophyd.sim import det, motor

    from bluebroker.ingest import CatalogWriter

    gates = [threading.Event() for _ in range(POINTS)]
    events = [threading.Event() for _ in range(POINTS)]
    uids: list[str] = []
    failed: list[BaseException] = []

    def watch(name, doc):  # subscribed after the writer: a seen event is already written
        if name == "start":
            uids.append(doc["uid"])
        elif name == "event":
            events[doc["seq_num"] - 1].set()

    def acquire():
        try:
            RE(gated_scan(motor, det, gates))
        except BaseException as err:  # reported by the test, not lost in the thread
            failed.append(err)

    def finish():
        gates[-1].set()
        thread.join(DEADLINE)
        assert not thread.is_alive() and not failed, failed

    tokens = [RE.subscribe(CatalogWriter(catalog, "bmm/raw")), RE.subscribe(watch)]
    thread = threading.Thread(target=acquire, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(gates=gates, events=events, uids=uids, finish=finish)
    finally:
        for gate in gates:
            gate.set()
        thread.join(DEADLINE)
        for token in tokens:
            RE.unsubscribe(token)


def test_live_plot_grows_then_finishes(page, web_url, catalog, RE):
    with gated_run(catalog, RE) as run:
        assert run.events[0].wait(DEADLINE), "the first point was not acquired"
        page.goto(f"{web_url}/browse/bmm/raw/{run.uids[0]}")
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        plot = page.get_by_test_id("run-plot")
        points = plot.get_by_test_id("plot-points")
        expect(plot.get_by_test_id("live-status")).to_have_text("live")
        expect(plot.get_by_test_id("plot-x")).to_have_value("motor")
        expect(points).to_have_attribute("data-count", "1")
        for i in range(1, POINTS):
            run.gates[i - 1].set()
            assert run.events[i].wait(DEADLINE), f"point {i + 1} was not acquired"
            expect(points).to_have_attribute("data-count", str(i + 1))
            if i == 1:  # another x while live: its column is read, and growth goes on
                plot.get_by_test_id("plot-x").select_option("time")
                points = plot.get_by_test_id("plot-points")
                expect(points).to_have_attribute("data-count", "2")
        run.finish()
        expect(page.get_by_test_id("run-plot").get_by_test_id("live-status")).to_contain_text(
            "finished"
        )
        expect(page.get_by_test_id("run-plot").get_by_test_id("plot-points")).to_have_attribute(
            "data-count", str(POINTS)
        )
        assert page.evaluate("window.__sameDocument === true"), "the page reloaded"


def test_live_plot_of_a_run_with_no_data_yet(page, web_url, catalog, RE):
    """The page opens between the start document and the first point: the plot waits for the
    run's first stream, then grows."""
    from ophyd.sim import det, motor

    from bluebroker.ingest import CatalogWriter

    opened, gate = threading.Event(), threading.Event()
    started, first = threading.Event(), threading.Event()
    uids: list[str] = []

    def watch(name, doc):
        if name == "start":
            uids.append(doc["uid"])
            started.set()
        elif name == "event":
            first.set()

    tokens = [RE.subscribe(CatalogWriter(catalog, "bmm/raw")), RE.subscribe(watch)]
    thread = threading.Thread(target=RE, args=(gated_scan(motor, det, [gate], opened),))
    thread.daemon = True
    thread.start()
    try:
        assert started.wait(DEADLINE), "the run did not start"
        page.goto(f"{web_url}/browse/bmm/raw/{uids[0]}")
        plot = page.get_by_test_id("run-plot")
        expect(plot).to_contain_text("waiting for the run's first stream")
        opened.set()
        assert first.wait(DEADLINE), "the first point was not acquired"
        expect(plot.get_by_test_id("plot-points")).to_have_attribute("data-count", "1")
        expect(plot.get_by_test_id("live-status")).to_have_text("live")
        gate.set()
        thread.join(DEADLINE)
        expect(page.get_by_test_id("run-plot").get_by_test_id("live-status")).to_contain_text(
            "finished"
        )
    finally:
        opened.set()
        gate.set()
        thread.join(DEADLINE)
        for token in tokens:
            RE.unsubscribe(token)

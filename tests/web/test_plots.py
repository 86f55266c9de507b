"""The table plot and the run page's plot of a finished run, in real Chromium."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect


def _scan(beamline) -> str:
    return next(u for u in beamline if u != "frames")  # scan(det1, det2 vs motor), 11 points


def test_table_plot_draws_every_row(page, web_url, beamline):
    page.goto(f"{web_url}/browse/bmm/raw/{_scan(beamline)}/primary/data")
    plot = page.get_by_test_id("table-plot")
    expect(plot.get_by_test_id("plot-points")).to_have_attribute("data-count", "11")
    expect(plot.locator("canvas")).to_have_count(1)
    fields = page.get_by_test_id("plot-field")
    expect(fields).to_have_values(["det1"])  # the first column that is not time
    fields.select_option(["det1", "det2"])
    expect(plot.locator(".u-legend .u-series")).to_have_count(3)  # x and two lines
    page.get_by_test_id("plot-x").select_option("motor")
    expect(plot.locator(".u-legend")).to_contain_text("motor")
    expect(plot.get_by_test_id("plot-points")).to_have_attribute("data-count", "11")
    query = parse_qs(urlsplit(page.url).query)
    assert query["plot_y"] == ["det1,det2"] and query["plot_x"] == ["motor"]


def test_table_plot_choice_comes_from_the_url(page, web_url, beamline):
    page.goto(f"{web_url}/browse/bmm/raw/{_scan(beamline)}/primary/data?plot_y=det2&plot_x=time")
    expect(page.get_by_test_id("plot-field")).to_have_values(["det2"])
    expect(page.get_by_test_id("plot-x")).to_have_value("time")
    expect(page.get_by_test_id("plot-points")).to_have_attribute("data-count", "11")


def test_run_plot_of_a_finished_scan_is_against_its_motor(page, web_url, beamline):
    page.goto(f"{web_url}/browse/bmm/raw/{_scan(beamline)}")
    plot = page.get_by_test_id("run-plot")
    expect(plot.get_by_test_id("live-status")).to_have_text("finished")
    expect(plot.get_by_test_id("plot-x")).to_have_value("motor")  # start.motors[0]
    expect(plot.get_by_test_id("plot-field")).to_have_values(["det1"])
    expect(plot.get_by_test_id("plot-points")).to_have_attribute("data-count", "11")
    plot.get_by_test_id("plot-x").select_option("time")
    expect(plot.get_by_test_id("plot-points")).to_have_attribute("data-count", "11")
    assert parse_qs(urlsplit(page.url).query)["plot_x"] == ["time"]


def test_run_plot_fits_a_phone(phone_page, web_url, beamline):
    phone_page.goto(f"{web_url}/browse/bmm/raw/{_scan(beamline)}")
    plot = phone_page.get_by_test_id("run-plot")
    expect(plot.get_by_test_id("plot-points")).to_have_attribute("data-count", "11")
    box = plot.locator("canvas").bounding_box()
    assert box is not None and box["x"] > 0 and box["x"] + box["width"] <= 390


def test_long_table_is_strided_with_a_note(page, web_url, catalog):
    """150,001 rows (one event page): every other row is drawn, read as raw bytes, and a note
    says so."""
    import numpy as np
    from event_model import compose_run

    from bluebroker.ingest import CatalogWriter

    n = 150_001
    run = compose_run(metadata={"plan_name": "long"})
    desc = run.compose_descriptor(
        name="primary",
        data_keys={"y": {"dtype": "number", "shape": [], "source": "sim"}},
    )
    y = np.arange(n, dtype=float) ** 0.5
    page_doc = desc.compose_event_page(
        data={"y": y.tolist()},
        timestamps={"y": [1.0] * n},
        seq_num=list(range(1, n + 1)),
        time=[1_700_000_000.0 + i for i in range(n)],
        validate=False,
    )
    CatalogWriter(catalog, "bmm/raw").write_many(
        [("start", run.start_doc), ("descriptor", desc.descriptor_doc),
         ("event_page", page_doc), ("stop", run.compose_stop())]
    )  # fmt: skip
    fetched = []
    page.on("request", lambda r: fetched.append(r.url) if "/api/v1/array/full/" in r.url else None)
    page.goto(f"{web_url}/browse/bmm/raw/{run.start_doc['uid']}/primary/data?plot_y=y")
    plot = page.get_by_test_id("table-plot")
    expect(plot.get_by_test_id("plot-note")).to_contain_text("downsampled by 2")
    expect(plot.get_by_test_id("plot-points")).to_have_attribute("data-count", str(n // 2 + 1))
    raw = [u for u in fetched if "octet-stream" in u]  # the plot's (the grid reads JSON pages)
    assert raw and all(parse_qs(urlsplit(u).query)["slice"] == ["::2"] for u in raw), raw


def test_plot_of_a_csv_file_in_a_served_folder(page, web_url, catalog, tmp_path):
    """A table from a file in a served folder (not a run's stream) plots too."""
    from bluebroker.directory import DirectorySource

    root = tmp_path / "lake"
    root.mkdir()
    (root / "scan.csv").write_text("motor,det\n1,10\n2,40\n3,90\n4,160\n")
    source = DirectorySource(catalog, root, "files")
    source.register()
    catalog.mount("files", source)
    page.goto(f"{web_url}/browse/files/scan.csv?plot_y=det&plot_x=motor")
    plot = page.get_by_test_id("table-plot")
    expect(plot.get_by_test_id("plot-points")).to_have_attribute("data-count", "4")
    expect(plot.get_by_test_id("plot-x")).to_have_value("motor")

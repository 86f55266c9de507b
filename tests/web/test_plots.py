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

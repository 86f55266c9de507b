"""The array viewer in real Chromium: planes chosen by sliders, downsampling of large planes
with a note, colormap and scale, hover readout, URL state, and 1-D line plots."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

CANVAS_PIXELS = "() => document.querySelector('[data-testid=array-canvas]').toDataURL()"


def _uids(beamline) -> list[str]:
    return [u for u in beamline if u != "frames"]


def _cam_url(web_url, beamline, query=""):
    uid = _uids(beamline)[1]  # bp.count([cam, det1], num=4): frames of 6x5 uint16
    return f"{web_url}/browse/bmm/raw/{uid}/primary/data/cam{query}"


def test_slider_moves_through_the_frames(page, web_url, beamline):
    page.goto(_cam_url(web_url, beamline))
    canvas = page.get_by_test_id("array-canvas")
    expect(canvas).to_have_attribute("data-plane", "0")
    assert canvas.get_attribute("width") == "5" and canvas.get_attribute("height") == "6"
    before = page.evaluate(CANVAS_PIXELS)
    slider = page.get_by_test_id("array-slider-0")
    expect(slider).to_have_attribute("max", "3")
    slider.focus()
    page.keyboard.press("ArrowRight")
    expect(canvas).to_have_attribute("data-plane", "1")
    after = page.evaluate(CANVAS_PIXELS)
    assert after != before, "frame 1 should look different from frame 0"
    assert parse_qs(urlsplit(page.url).query)["slice"] == ["1"]
    # the hover readout gives the stored value: frame 1 is arange(30).reshape(6, 5) + 7
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 3.5 / 5, box["y"] + box["height"] * 2.5 / 6)
    expected = int(beamline["frames"]["cam"][1][2, 3])
    expect(page.get_by_test_id("array-readout")).to_have_text(f"row 2, col 3: {expected}")
    # quick moves: the plane shown at the end is the last one asked for, never a stale one
    slider.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowRight")
    expect(canvas).to_have_attribute("data-plane", "3")
    expected = int(beamline["frames"]["cam"][3][2, 3])
    expect(page.get_by_test_id("array-readout")).to_have_text(f"row 2, col 3: {expected}")


def test_view_state_round_trips_through_the_url(page, web_url, beamline):
    page.goto(_cam_url(web_url, beamline, "?slice=3&cmap=magma&scale=log&clip=0-100"))
    canvas = page.get_by_test_id("array-canvas")
    expect(canvas).to_have_attribute("data-plane", "3")
    expect(canvas).to_have_attribute("data-cmap", "magma")
    expect(canvas).to_have_attribute("data-scale", "log")
    expect(page.get_by_test_id("array-slider-0")).to_have_value("3")
    expect(page.get_by_test_id("colormap")).to_have_value("magma")
    expect(page.get_by_test_id("scale")).to_have_value("log")
    expect(page.get_by_test_id("clip")).to_have_value("0-100")
    # min-max of frame 3 (arange(30) + 21): the colorbar says the range
    expect(page.get_by_test_id("colorbar").locator("..")).to_contain_text("21")
    expect(page.get_by_test_id("colorbar").locator("..")).to_contain_text("50")


def test_colormap_and_scale_change_the_pixels(page, web_url, beamline):
    page.goto(_cam_url(web_url, beamline))
    canvas = page.get_by_test_id("array-canvas")
    expect(canvas).to_have_attribute("data-plane", "0")
    viridis = page.evaluate(CANVAS_PIXELS)
    page.get_by_test_id("colormap").select_option("gray")
    expect(canvas).to_have_attribute("data-cmap", "gray")
    gray = page.evaluate(CANVAS_PIXELS)
    assert gray != viridis
    page.get_by_test_id("scale").select_option("log")
    expect(canvas).to_have_attribute("data-scale", "log")
    log = page.evaluate(CANVAS_PIXELS)
    assert log != gray
    query = parse_qs(urlsplit(page.url).query)
    assert query["cmap"] == ["gray"] and query["scale"] == ["log"]
    # a gray image is gray: r == g == b at every drawn pixel
    assert page.evaluate(
        """() => {
          const c = document.querySelector('[data-testid=array-canvas]');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          for (let i = 0; i < d.length; i += 4) {
            if (d[i + 3] && (d[i] !== d[i + 1] || d[i] !== d[i + 2])) return false;
          }
          return true;
        }"""
    )


STATIC_ENTRIES = """() => performance.getEntriesByType('resource')
  .filter((e) => new URL(e.name).pathname.startsWith('/static/'))
  .map((e) => [new URL(e.name).pathname, e.transferSize])"""


def test_a_second_visit_takes_every_page_file_from_the_cache(page, web_url, beamline):
    """The page's files are under a versioned path and immutable: on a person's second visit
    the image view asks the network for none of them, not even a revalidation (a 304 has
    headers to transfer; only a cache hit transfers 0 bytes)."""
    canvas = page.get_by_test_id("array-canvas")
    for _visit in range(2):
        page.goto(_cam_url(web_url, beamline))
        expect(canvas).to_have_attribute("data-plane", "0")
    entries = dict(page.evaluate(STATIC_ENTRIES))
    version = page.evaluate("() => new URL(document.querySelector('script').src).pathname")
    prefix = version.removesuffix("app.js")
    assert prefix.startswith("/static/v-"), version
    for name in ("app.js", "pages/array.js", "views/array.js", "views/common.js"):
        assert prefix + name in entries, sorted(entries)
    assert {path: size for path, size in entries.items() if size} == {}


API_ENTRIES = """() => performance.getEntriesByType('resource')
  .filter((e) => e.name.includes('/api/v1/metadata/') || e.name.includes('/api/v1/array/'))
  .map((e) => [new URL(e.name).pathname.split('/')[3], e.startTime, e.responseEnd])"""


def test_a_second_visit_asks_for_the_plane_beside_the_metadata(page, web_url, beamline):
    """A first visit needs the array's shape before it can ask for a plane (two round trips
    in a row); the same page opened again sends its plane request at once, beside the
    metadata request, and the view uses that one response (never a second request)."""
    canvas = page.get_by_test_id("array-canvas")
    timings = []
    for _visit in range(2):
        page.goto(_cam_url(web_url, beamline))
        expect(canvas).to_have_attribute("data-plane", "0")
        timings.append(page.evaluate(API_ENTRIES))
    for visit, entries in enumerate(timings):
        kinds = sorted(kind for kind, _, _ in entries)
        assert kinds == ["array", "metadata"], (visit, entries)
        (array_start,) = [start for kind, start, _ in entries if kind == "array"]
        (metadata_end,) = [end for kind, _, end in entries if kind == "metadata"]
        if visit == 0:
            assert array_start >= metadata_end, entries
        else:
            assert array_start < metadata_end, entries
    # the early response was this plane's: the picture and values are right, and moving on
    # asks for the next plane as usual
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 3.5 / 5, box["y"] + box["height"] * 2.5 / 6)
    expected = int(beamline["frames"]["cam"][0][2, 3])
    expect(page.get_by_test_id("array-readout")).to_have_text(f"row 2, col 3: {expected}")
    slider = page.get_by_test_id("array-slider-0")
    slider.focus()
    page.keyboard.press("ArrowRight")
    expect(canvas).to_have_attribute("data-plane", "1")
    # another page's remembered request is not sent for this one
    page.goto(_cam_url(web_url, beamline, "?slice=2"))
    expect(canvas).to_have_attribute("data-plane", "2")
    kinds = sorted(kind for kind, _, _ in page.evaluate(API_ENTRIES))
    assert kinds == ["array", "metadata"], kinds


def test_large_plane_is_downsampled_with_a_note(page, web_url, catalog, RE, tmp_path):
    from bluesky import plans as bp

    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.simulated import HDF5Camera

    big = HDF5Camera("big", tmp_path, shape=(3000, 3000))
    token = RE.subscribe(CatalogWriter(catalog, "bmm/raw"))
    try:
        (uid,) = RE(bp.count([big], num=1))
    finally:
        RE.unsubscribe(token)
    fetched = []
    page.on("request", lambda r: fetched.append(r.url) if "/array/full/" in r.url else None)
    page.goto(f"{web_url}/browse/bmm/raw/{uid}/primary/data/big")
    canvas = page.get_by_test_id("array-canvas")
    expect(canvas).to_have_attribute("data-plane", "0")
    assert (canvas.get_attribute("width"), canvas.get_attribute("height")) == ("1000", "1000")
    note = page.get_by_test_id("array-note")
    expect(note).to_contain_text("downsampled by 3")
    expect(note).to_contain_text("Download tab")
    # only the one plane, strided, was asked for, as raw bytes
    assert len(fetched) == 1, fetched
    query = parse_qs(urlsplit(fetched[0]).query)
    assert query["slice"] == ["0,::3,::3"]
    assert query["format"] == ["application/octet-stream"]
    # a pixel reads as the stored value at its full-resolution place
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 10.5 / 1000, box["y"] + box["height"] * 20.5 / 1000)
    stored = int(big.frames[0][60, 30])
    expect(page.get_by_test_id("array-readout")).to_have_text(f"row 60, col 30: {stored}")


def test_one_dimensional_array_is_a_line_plot(page, web_url, beamline):
    uid = _uids(beamline)[0]  # the 11-point scan
    page.goto(f"{web_url}/browse/bmm/raw/{uid}/primary/data/det2")
    expect(page.get_by_test_id("line-plot")).to_be_visible()
    expect(page.get_by_test_id("plot-points")).to_have_attribute("data-count", "11")
    expect(page.get_by_test_id("line-plot").locator("canvas")).to_have_count(1)
    expect(page.get_by_test_id("array-canvas")).to_have_count(0)


def test_image_fits_a_phone(phone_page, web_url, beamline):
    phone_page.goto(_cam_url(web_url, beamline))
    canvas = phone_page.get_by_test_id("array-canvas")
    expect(canvas).to_have_attribute("data-plane", "0")
    box = canvas.bounding_box()
    assert 0 < box["width"] <= 390 and box["x"] >= 0
    expect(canvas).to_have_css("image-rendering", re.compile("pixelated|crisp-edges"))


@pytest.mark.parametrize("query", ["?slice=99", "?slice=abc&cmap=nope&scale=x&clip=7"])
def test_bad_view_state_in_the_url_is_ignored(page, web_url, beamline, query):
    page.goto(_cam_url(web_url, beamline, query))
    canvas = page.get_by_test_id("array-canvas")
    expect(canvas).to_have_attribute("data-plane", re.compile(r"^[03]$"))
    expect(canvas).to_have_attribute("data-cmap", "viridis")


def test_unreadable_data_is_said_in_words(page, web_url, beamline, tmp_path):
    for frames in tmp_path.glob("cam_*.h5"):  # the detector file is gone (moved, deleted)
        frames.unlink()
    page.goto(_cam_url(web_url, beamline))
    error = page.get_by_test_id("view-error")
    expect(error).to_contain_text("Could not read the image: ")
    expect(error).to_contain_text(re.compile(r"\b[45]\d\d: \S"))  # the API's status and detail


@pytest.mark.parametrize("dtype", [">u2", ">f8", "int8", "<i8", "<f4"])
def test_values_read_right_whatever_the_dtype(page, web_url, catalog, RE, tmp_path, dtype):
    """Byte order and width are decoded as the server's X-Array-Dtype says (a big-endian
    file's data arrive in the order the header names)."""
    from bluesky import plans as bp

    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.simulated import HDF5Camera

    cam = HDF5Camera("typed", tmp_path, shape=(6, 5), dtype=dtype)
    token = RE.subscribe(CatalogWriter(catalog, "bmm/raw"))
    try:
        (uid,) = RE(bp.count([cam], num=2))
    finally:
        RE.unsubscribe(token)
    page.goto(f"{web_url}/browse/bmm/raw/{uid}/primary/data/typed?slice=1")
    canvas = page.get_by_test_id("array-canvas")
    expect(canvas).to_have_attribute("data-plane", "1")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 4.5 / 5, box["y"] + box["height"] * 5.5 / 6)
    stored = cam.frames[1][5, 4].item()
    expect(page.get_by_test_id("array-readout")).to_have_text(f"row 5, col 4: {stored:g}")


@pytest.mark.parametrize("scale", ["linear", "log"])
def test_integer_frames_paint_as_their_float_twin(page, web_url, catalog, RE, tmp_path, scale):
    """8/16-bit frames are coloured through a per-value table, other dtypes pixel by pixel:
    the same values must give the very same picture either way (150x200 is past the size
    where the table is used)."""
    from bluesky import plans as bp

    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.simulated import HDF5Camera

    dtypes = {"u16": "<u2", "i16": "<i2", "f32": "<f4"}
    cams = [HDF5Camera(name, tmp_path, shape=(150, 200), dtype=d) for name, d in dtypes.items()]
    token = RE.subscribe(CatalogWriter(catalog, "bmm/raw"))
    try:
        (uid,) = RE(bp.count(cams, num=1))
    finally:
        RE.unsubscribe(token)
    pictures = {}
    for cam in cams:
        page.goto(f"{web_url}/browse/bmm/raw/{uid}/primary/data/{cam.name}?scale={scale}")
        canvas = page.get_by_test_id("array-canvas")
        expect(canvas).to_have_attribute("data-plane", "0")
        expect(canvas).to_have_attribute("data-scale", scale)
        pictures[cam.name] = page.evaluate(CANVAS_PIXELS)
    assert len(set(pictures.values())) == 1, "the same values painted differently by dtype"
    colours = page.evaluate(
        """() => { const c = document.querySelector('[data-testid=array-canvas]');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set();
        for (let i = 0; i < d.length; i += 4) seen.add(d.slice(i, i + 4).join());
        return seen.size; }"""
    )
    assert colours > 100, "a ramp of 30,000 values should use most of the colormap"

"""The web page's key flows in real Firefox ESR (Debian's), driven over WebDriver BiDi by
tests/web/firefox_bidi.py, against the same live server and RunEngine runs as the Chromium
tests: the runs list, breadcrumbs and search, a run page with its plot, the image slider, a
CSV download, a live plot growing while a RunEngine acquires, errors in words and the token
sign-in, and the phone width. Any uncaught JavaScript error (or console.error) on a page
fails the test.

Set BLUEBROKER_SCREENSHOTS=<folder> to keep the pictures taken along the way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import CI, TEST_KEY
from tests.web.firefox_bidi import ARROW_RIGHT, ENTER, FIREFOX, Firefox
from tests.web.test_download import assert_csv_is_the_scan
from tests.web.test_live_plot import DEADLINE, POINTS, gated_run

pytestmark = pytest.mark.skipif(
    not CI and not os.path.exists(FIREFOX),
    reason=f"Firefox ESR is not at {FIREFOX} (apt-get install firefox-esr; scripts/test does)",
)
DESKTOP = (1280, 800)
PHONE = (390, 844)
CANVAS_PIXELS = "document.querySelector('[data-testid=array-canvas]').toDataURL()"


@pytest.fixture(scope="module")
def firefox():
    """One Firefox for the module: starting it is the slow part."""
    if not os.path.exists(FIREFOX):  # only reached with CI=true (see pytestmark)
        pytest.fail(f"CI=true but Firefox ESR is not at {FIREFOX} (scripts/test installs it)")
    with Firefox() as browser:
        yield browser


@pytest.fixture
def ff(firefox: Firefox, web_url: str):
    """The module's Firefox at desktop size, signed in to this test's server, with this
    test's JavaScript errors checked. It leaves the page before the server stops (an open
    page's connections would hold up the server's shutdown)."""
    firefox.errors.clear()
    firefox.console_errors.clear()
    firefox.set_viewport(*DESKTOP)
    sign_in(firefox, web_url)
    yield firefox
    firefox.navigate("about:blank")
    assert not firefox.errors, f"uncaught JavaScript errors: {firefox.errors}"
    assert not firefox.console_errors, f"console errors: {firefox.console_errors}"


def _uids(beamline) -> list[str]:
    return [uid for uid in beamline if uid != "frames"]


def _q(selector: str) -> str:
    return f"document.querySelector({json.dumps(selector)})"


def sign_in(ff: Firefox, url: str) -> None:
    """Open the printed URL: the token becomes a cookie and leaves the address bar."""
    ff.navigate(f"{url}/?token={TEST_KEY}")
    ff.wait_for(f"location.href.replace(/\\/$/, '') === {json.dumps(url)}")


def goto(ff: Firefox, url: str) -> None:
    """Open ``url``; the page before it must not have thrown."""
    assert not ff.errors, f"uncaught JavaScript errors before {url}: {ff.errors}"
    ff.navigate(url)


def wait_url(ff: Firefox, url: str) -> None:
    ff.wait_for(f"location.href === {json.dumps(url)}")


def wait_rows(ff: Firefox, uids: list[str]) -> None:
    """Until the runs list shows exactly these runs in this order."""
    ff.wait_for(
        "JSON.stringify([...document.querySelectorAll('[data-testid=run-row]')]"
        f".map(r => r.dataset.uid)) === {json.dumps(json.dumps(uids, separators=(',', ':')))}")


def select(ff: Firefox, selector: str, value: str) -> None:
    """Choose an option as a person does (the value changes, then input and change fire)."""
    ff.wait_for(f"(s => s && [...s.options].some(o => o.value === {json.dumps(value)}))"
                f"({_q(selector)})")
    ff.evaluate(f"(s => {{ s.value = {json.dumps(value)};"
                " s.dispatchEvent(new Event('input', {bubbles: true}));"
                f" s.dispatchEvent(new Event('change', {{bubbles: true}})); }})({_q(selector)})")


def search(ff: Firefox, text: str) -> None:
    """Type a query into the search box, replacing what is there, and press Enter."""
    ff.click("[data-testid=search-input]")
    ff.evaluate(f"{_q('[data-testid=search-input]')}.select()")
    ff.type_text(text)
    ff.press(ENTER)


def drawn(ff: Firefox, canvas: str) -> bool:
    """Until the canvas has pixels of more than one colour (something was drawn on it)."""
    return ff.wait_for(
        f"(c => {{ if (!c || !c.width || !c.height) return false;"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " const seen = new Set(); for (let i = 0; i < d.length; i += 4) {"
        " if (d[i + 3]) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);"
        f" if (seen.size > 1) return true; }} return false; }})({_q(canvas)})")


def keep(ff: Firefox, name: str) -> None:
    """A screenshot, always taken (it must be a PNG), kept when BLUEBROKER_SCREENSHOTS says."""
    folder = os.environ.get("BLUEBROKER_SCREENSHOTS")
    picture = ff.screenshot(str(Path(folder) / name) if folder else None)
    assert picture.startswith(b"\x89PNG"), "the screenshot is not a PNG"


def test_runs_list_breadcrumbs_search_and_run_page(ff, web_url, beamline):
    uids = _uids(beamline)
    goto(ff, web_url)  # the root lists its containers
    ff.click("[data-testid=child-list] a[href='/browse/bmm']")
    ff.click("[data-testid=child-list] a[href='/browse/bmm/raw']")
    wait_url(ff, f"{web_url}/browse/bmm/raw")
    wait_rows(ff, uids[::-1])  # newest first
    scan = f"[data-testid=run-row][data-uid='{uids[0]}']"
    ff.wait_text(f"{scan} td.status", "^success$")
    ff.wait_text(f"{scan} td[data-label=Events]", r"^11 \(13\)$")
    assert "Cu" in ff.evaluate(f"{_q(scan)}.textContent")
    keep(ff, "firefox-runs-desktop.png")
    ff.click(f"{scan} a")  # by the breadcrumbs' way down: the run page
    wait_url(ff, f"{web_url}/browse/bmm/raw/{uids[0]}")
    ff.wait_text("[data-testid=run-status]", "^success$")
    ff.wait_for("document.querySelectorAll('[data-testid=stream]').length === 2")
    assert ff.evaluate(
        "document.querySelectorAll('[data-stream=primary] [data-testid=field]').length") == 4
    ff.wait_for("document.querySelector('[data-testid=run-plot] [data-testid=plot-points]')"
                "?.dataset.count === '11'")
    assert drawn(ff, "[data-testid=run-plot] canvas")
    ff.click("[data-stream=primary] a[href$='/primary/data/det1']")
    ff.wait_text("[data-testid=breadcrumbs]",
                 r"^\s*Top / bmm / raw / \w{8}… / primary / data / det1")
    ff.click("[data-testid=breadcrumbs] a[href='/browse/bmm/raw']")
    wait_rows(ff, uids[::-1])
    # search: a metadata key, then free text, then on to the run found
    search(ff, "sample=Fe")
    ff.wait_for("location.search.includes('q=sample%3DFe')")
    wait_rows(ff, [uids[1]])
    search(ff, "Si")
    wait_rows(ff, [uids[2]])
    ff.click("[data-testid=run-row] a")
    wait_url(ff, f"{web_url}/browse/bmm/raw/{uids[2]}")
    ff.wait_text("[data-testid=run-status]", "^success$")


def test_image_slider_changes_the_picture(ff, web_url, beamline):
    cam = f"{web_url}/browse/bmm/raw/{_uids(beamline)[1]}/primary/data/cam"
    goto(ff, cam)
    canvas = "[data-testid=array-canvas]"
    ff.wait_for(f"{_q(canvas)}?.dataset.plane === '0'")
    assert ff.evaluate(f"[{_q(canvas)}.width, {_q(canvas)}.height]") == [5, 6]
    before = ff.evaluate(CANVAS_PIXELS)
    keep(ff, "firefox-image-desktop.png")
    ff.evaluate(f"{_q('[data-testid=array-slider-0]')}.focus()")
    ff.press(ARROW_RIGHT)  # a real key press on the slider
    ff.wait_for(f"{_q(canvas)}.dataset.plane === '1'")
    assert ff.evaluate(CANVAS_PIXELS) != before, "frame 1 should look different from frame 0"
    assert ff.evaluate("new URLSearchParams(location.search).get('slice')") == "1"


def test_csv_download_is_the_data(ff, web_url, beamline, tmp_path_factory):
    folder = tmp_path_factory.mktemp("downloads")  # not tmp_path: the shared server will do
    scan_uid = _uids(beamline)[0]
    goto(ff, f"{web_url}/browse/bmm/raw/{scan_uid}/primary/data")
    ff.click("[data-testid=tab-download]")
    select(ff, "[data-testid=download-format]", "csv")
    ff.click("[data-testid=download-column-det1]")
    ff.click("[data-testid=download-column-motor]")
    ff.wait_for(f"{_q('[data-testid=download-url]')}.value.endsWith("
                "'?format=csv&column=det1&column=motor')")
    saved = Path(ff.download("[data-testid=download-link]", str(folder)))
    assert saved.suffix == ".csv" and saved.parent == folder
    assert_csv_is_the_scan(saved, beamline[scan_uid])


def test_live_plot_grows_while_the_run_acquires(ff, web_url, catalog, RE):
    plot = "[data-testid=run-plot]"
    count = f"{_q(plot + ' [data-testid=plot-points]')}?.dataset.count"
    with gated_run(catalog, RE) as run:
        assert run.events[0].wait(DEADLINE), "the first point was not acquired"
        goto(ff, f"{web_url}/browse/bmm/raw/{run.uids[0]}")
        ff.evaluate("window.__sameDocument = true")  # gone if the page reloads
        ff.wait_text(f"{plot} [data-testid=live-status]", "^live$")
        ff.wait_for(f"{count} === '1'")
        for i in range(1, POINTS):
            run.gates[i - 1].set()
            assert run.events[i].wait(DEADLINE), f"point {i + 1} was not acquired"
            ff.wait_for(f"{count} === '{i + 1}'")
            assert drawn(ff, f"{plot} canvas")
        run.finish()
        ff.wait_text(f"{plot} [data-testid=live-status]", "finished")
        assert ff.evaluate(count) == str(POINTS)
        assert ff.evaluate("window.__sameDocument === true"), "the page reloaded"


def test_phone_width_has_no_sideways_scroll(ff, web_url, beamline):
    scan_uid = _uids(beamline)[0]
    ff.set_viewport(*PHONE)
    run = f"/browse/bmm/raw/{scan_uid}"
    table = f"{run}/primary/data"
    points = "[data-testid=plot-points][data-count='11']"
    views = {  # each view, and what shows it has finished drawing
        "/browse/bmm/raw": "[data-testid=run-row]:nth-child(4)",
        run: f"[data-testid=run-plot] {points}",
        f"{run}?tab=metadata": "[data-testid=metadata-tree]",
        table: f"[data-testid=table-plot] {points}",
        f"{table}?tab=detail": "[data-testid=python-snippet]",
        f"{table}?tab=download": "[data-testid=download-link]",
        f"/browse/bmm/raw/{_uids(beamline)[1]}/primary/data/cam":
            "[data-testid=array-canvas][data-plane='0']",
    }
    for path, ready in views.items():
        goto(ff, web_url + path)
        ff.wait_for(f"{_q(ready)} && document.fonts.status === 'loaded'")
        if path == "/browse/bmm/raw":
            keep(ff, "firefox-runs-phone.png")
        wide = ff.evaluate("document.documentElement.scrollWidth")
        assert wide <= PHONE[0], f"{path} is {wide} px wide on a {PHONE[0]} px screen"
    box = ff.evaluate("(r => [r.x, r.width])"
                      "(document.querySelector('[data-testid=array-canvas]').getBoundingClientRect())")
    assert box[0] >= 0 and 0 < box[1] <= PHONE[0]
    goto(ff, f"{web_url}/browse/bmm/raw")  # the narrow list keeps the key columns
    row = "[data-testid=run-row]"
    ff.wait_for(f"{_q(row + ' td[data-label=Scan]')}?.offsetParent")
    assert ff.evaluate(f"{_q(row + ' td[data-label=Status]')}.offsetParent !== null")
    assert ff.evaluate(f"{_q(row + ' td[data-label=Sample]')}.offsetParent === null")


def test_errors_in_words_and_the_token_cookie(ff, web_url, beamline):
    goto(ff, f"{web_url}/browse/bmm/raw/0000nothere")
    ff.wait_text("[data-testid=error]", r"Not found \(HTTP 404\)[\s\S]*0000nothere")
    goto(ff, f"{web_url}/browse/bmm/raw?scan_id=first")
    ff.wait_text("[data-testid=error]", 'scan id "first" is not a whole number')
    ff.send("storage.deleteCookies")  # a stranger: never opened the token URL
    goto(ff, f"{web_url}/browse/bmm/raw")
    ff.wait_text("[data-testid=error]", r"HTTP 401[\s\S]*\?token=")
    assert TEST_KEY not in ff.evaluate("document.documentElement.outerHTML")
    sign_in(ff, web_url)  # the printed URL signs this browser in again
    goto(ff, f"{web_url}/browse/bmm/raw")
    wait_rows(ff, _uids(beamline)[::-1])

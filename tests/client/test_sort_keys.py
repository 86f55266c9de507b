"""Sort keys that no run has are refused, with the keys the runs do have: over HTTP (400),
from the Python client (at the ``sort()`` call) and on the catalog itself."""

from __future__ import annotations

import httpx
import pytest

from bluebroker import queries as q
from bluebroker.client import BadRequestError, from_uri
from tests.demo_data import acquire_demo


@pytest.fixture
def demo(catalog, tmp_path):
    from bluebroker.server.run import background_server

    uids = acquire_demo(catalog, tmp_path / "files")
    with background_server(catalog) as url:
        yield url, catalog, uids


def test_http_refuses_a_key_no_run_has(demo):
    url, _, _ = demo
    r = httpx.get(f"{url}/api/v1/search/bmm/raw", params={"sort": "-starttime"})
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert "no run here has 'start.starttime' to sort by" in detail
    assert "did you mean -time?" in detail and "plan_name" in detail
    assert "\n" not in detail
    r = httpx.get(f"{url}/api/v1/search/bmm/raw", params={"sort": "smaple"})
    assert r.status_code == 400 and "did you mean sample?" in r.json()["detail"]


def test_client_raises_the_servers_message_at_sort(demo):
    url, _, _ = demo
    runs = from_uri(url)["bmm"]["raw"]
    with pytest.raises(BadRequestError, match=r"did you mean -time\?"):
        runs.sort("-starttime")
    with pytest.raises(BadRequestError, match=r"did you mean stop\.exit_status\?"):
        runs.sort(("stop.exit_stat", 1))
    with pytest.raises(TypeError, match="a sort key is 'name' or '-name'"):
        runs.sort(("time", "down"))


def test_documented_keys_keep_working(demo):
    url, _, uids = demo
    runs = from_uri(url)["bmm"]["raw"]
    assert list(runs.sort("-time")) == uids[::-1]
    assert list(runs.sort(("start.time", -1))) == uids[::-1]
    assert list(runs.sort("-scan_id")) == uids[::-1]
    assert list(runs.sort("stop.time")) == uids
    # a key some runs lack (the grid scan has no sample): they come last
    by_sample = list(runs.sort("sample"))
    samples = [runs[u].start.get("sample") for u in by_sample]
    assert samples[-1] is None and samples[:3] == sorted(samples[:3])
    # the key need only exist in the catalog, not in the search's runs
    grid = runs.search(q.Key("plan_name") == "grid_scan")
    assert len(grid.sort("-sample")) == 1


def test_catalog_refuses_too_and_an_empty_path_takes_any_key(demo):
    _, catalog, _ = demo
    with pytest.raises(q.QueryError, match=r"did you mean -time\?"):
        catalog["bmm/raw"].sort(("starttime", -1))
    catalog.create_catalog("bmm/empty")
    assert list(catalog["bmm/empty"].sort(("anything", 1))) == []

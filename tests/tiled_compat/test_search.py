"""Every query class Tiled's client and bluesky-tiled-plugins send, in their encodings (text
fields plain, values JSON, lists comma-separated), against the runs' own start documents."""

from __future__ import annotations

import time

import pytest
from bluesky_tiled_plugins.queries import PartialUID, ScanID, ScanIDRange, TimeRange
from tiled.queries import Comparison, Contains, Eq, FullText, In, Key, NotEq, NotIn, Regex

from .conftest import starts

CASES = [
    (Key("sample") == "Cu", lambda s: s.get("sample") == "Cu"),
    (Eq("start.plan_name", "count"), lambda s: s["plan_name"] == "count"),
    (NotEq("sample", "Cu"), lambda s: s.get("sample") != "Cu"),
    (Key("scan_id") > 2, lambda s: s["scan_id"] > 2),
    (Key("scan_id") <= 2, lambda s: s["scan_id"] <= 2),
    (Comparison("ge", "num_points", 4), lambda s: s.get("num_points", -1) >= 4),
    (Comparison("lt", "num_points", 4), lambda s: s.get("num_points", 99) < 4),
    (FullText("Fe"), lambda s: s.get("sample") == "Fe"),
    (Regex("sample", "^[CS]"), lambda s: s.get("sample", "").startswith(("C", "S"))),
    (Regex("sample", "^cu$", case_sensitive=False), lambda s: s.get("sample") == "Cu"),
    (In("sample", ["Cu", "Si"]), lambda s: s.get("sample") in ("Cu", "Si")),
    (NotIn("sample", ["Cu", "Si"]), lambda s: s.get("sample") not in ("Cu", "Si")),
    (Contains("detectors", "det1"), lambda s: "det1" in s["detectors"]),
    (ScanIDRange(2, 4), lambda s: 2 <= s["scan_id"] < 4),
]


@pytest.mark.parametrize("query, keep", CASES, ids=[repr(q)[:60] for q, _ in CASES])
def test_query_classes(tiled, beamline, query, keep):
    runs = starts(beamline)
    wanted = [uid for uid, start in runs.items() if keep(start)]
    assert wanted and len(wanted) < len(runs)  # each case tells runs apart
    found = tiled["bmm"]["raw"].search(query)
    assert len(found) == len(wanted)
    assert list(found) == wanted
    assert [r.metadata["start"]["uid"] for r in found.values()] == wanted


def test_plugin_queries(tiled, beamline):
    runs = starts(beamline)
    uids = list(runs)
    raw = tiled["bmm"]["raw"]
    scan_id = runs[uids[2]]["scan_id"]
    assert list(raw.search(ScanID(scan_id))) == [uids[2]]
    assert list(raw.search(PartialUID(uids[1][:7]))) == [uids[1]]
    assert list(raw.search(TimeRange(since=time.time() - 3600))) == uids
    assert list(raw.search(TimeRange(until="2001-01-01"))) == []
    early = runs[uids[1]]["time"]
    assert list(raw.search(TimeRange(since=early, timezone="UTC"))) == uids[1:]
    # a search within a search, then a run looked up by key within its results (lookup)
    counts = raw.search(Key("plan_name") == "count")
    assert len(counts) == 3
    assert counts[uids[3]].metadata["start"]["uid"] == uids[3]
    with pytest.raises(KeyError):
        counts[uids[0]]  # a scan, not among the counts
    chained = counts.search(Key("sample") == "Fe")
    assert list(chained) == [uids[1]] and len(chained) == 1
    # sorted the other way, as raw[-1] and values().last() ask
    assert list(raw.sort(("scan_id", -1))) == uids[::-1]


def test_tiled_encodings_over_http(tiled_url, beamline):
    """The raw parameters, as Tiled's client sends them and as ours does, give the same."""
    import httpx

    uids = list(starts(beamline))
    url = tiled_url + "/api/v1/search/bmm/raw"
    pairs = [
        ({"filter[eq][condition][key]": "sample", "filter[eq][condition][value]": '"Cu"'}, 1),
        ({"filter[eq][condition][key]": '"sample"', "filter[eq][condition][value]": '"Cu"'}, 1),
        ({"filter[partial_uid][condition][partial_uids]": f"{uids[0][:6]},{uids[3][:6]}"}, 2),
        (
            {
                "filter[scan_id][condition][scan_ids]": "1,2",
                "filter[scan_id][condition][duplicates]": "latest",
            },
            2,
        ),
        ({"filter[lookup][condition][key]": uids[2]}, 1),
        ({"fields": "count"}, 4),
    ]
    for params, count in pairs:
        body = httpx.get(url, params=params).json()
        assert body["meta"]["count"] == count, params
        counting = params.get("fields") == "count"
        assert len(body["data"]) == (0 if counting else count), params
    bad = httpx.get(url, params={"filter[scan_id][condition][scan_ids]": "1,x"})
    assert bad.status_code == 400 and "whole numbers" in bad.json()["detail"]
    bad = httpx.get(
        url, params={"filter[eq][condition][key]": "a", "filter[eq][condition][value]": "not json"}
    )
    assert bad.status_code == 400 and "JSON" in bad.json()["detail"]

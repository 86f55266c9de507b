"""Metadata search runs in SQL, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import time

import pytest
from bluesky import plans as bp
from ophyd.sim import det1, motor

from bluebroker import queries as q
from bluebroker.catalog import AmbiguousKey, NotFound

RUNS = [
    dict(
        sample="Cu foil",
        temperature=300,
        tags=["xas", "edge"],
        beamline="bmm",
        good=True,
        detail={"element": "Cu", "edge": "K"},
    ),
    dict(
        sample="Fe2O3 powder",
        temperature=77.5,
        tags=["xrd"],
        beamline="bmm",
        good=False,
        detail={"element": "Fe", "edge": "K"},
    ),
    dict(
        sample="silicon wafer",
        temperature=295,
        tags=["xas"],
        beamline="csx",
        good=True,
        detail={"element": "Si", "edge": "L3"},
    ),
    dict(sample="Cu foil", temperature="room", beamline="csx", detail={"element": "Cu"}),
    dict(sample="unknown", beamline="bmm", tags=[]),
]


@pytest.fixture
def runs(RE, writer):
    """Five real runs with varied metadata; scan_id 7 used twice, one scan instead of count."""
    RE.subscribe(writer)
    uids, times = [], []
    for i, md in enumerate(RUNS):
        RE.md["scan_id"] = 6 if i in (1, 3) else 10 + i  # the RunEngine adds 1
        plan = bp.scan([det1], motor, 0, 1, 2, md=md) if i == 2 else bp.count([det1], md=md)
        (uid,) = RE(plan)
        uids.append(uid)
        times.append(writer.catalog["bmm/raw"][uid].metadata["start"]["time"])
        time.sleep(0.01)
    return writer.catalog["bmm/raw"], uids, times


def found(cat, *queries):
    for query in queries:
        cat = cat.search(query)
    return list(cat)


def test_equality_by_type(runs):
    cat, uids, _ = runs
    assert found(cat, q.Eq("sample", "Cu foil")) == [uids[0], uids[3]]
    assert found(cat, q.Eq("temperature", 300)) == [uids[0]]
    assert found(cat, q.Eq("temperature", 77.5)) == [uids[1]]
    assert found(cat, q.Eq("good", True)) == [uids[0], uids[2]]
    assert found(cat, q.Eq("good", False)) == [uids[1]]
    assert found(cat, q.Eq("tags", ["xas", "edge"])) == [uids[0]]
    assert found(cat, q.Eq("detail.element", "Cu")) == [uids[0], uids[3]]
    assert found(cat, q.Eq("start.detail.edge", "K")) == [uids[0], uids[1]]
    assert found(cat, q.Eq("plan_name", "scan")) == [uids[2]]
    assert found(cat, q.Key("beamline") == "csx") == [uids[2], uids[3]]


def test_not_equal_includes_runs_without_the_key(runs):
    cat, uids, _ = runs
    assert found(cat, q.NotEq("good", True)) == [uids[1], uids[3], uids[4]]
    assert found(cat, q.Key("sample") != "Cu foil") == [uids[1], uids[2], uids[4]]


def test_comparisons(runs):
    cat, uids, _ = runs
    assert found(cat, q.Comparison("gt", "temperature", 100)) == [uids[0], uids[2]]
    assert found(cat, q.Key("temperature") <= 295) == [uids[1], uids[2]]
    assert found(cat, q.Key("sample") >= "silicon") == [uids[2], uids[4]]
    with pytest.raises(q.QueryError, match="operator"):
        q.Comparison("eq", "temperature", 1)


def test_contains_in_and_not_in(runs):
    cat, uids, _ = runs
    assert found(cat, q.Contains("tags", "xas")) == [uids[0], uids[2]]
    assert found(cat, q.Contains("sample", "foil")) == [uids[0], uids[3]]
    assert found(cat, q.In("detail.element", ["Fe", "Si"])) == [uids[1], uids[2]]
    assert found(cat, q.NotIn("detail.element", ["Cu"])) == [uids[1], uids[2], uids[4]]


def test_full_text_and_regex(runs):
    cat, uids, _ = runs
    assert found(cat, q.FullText("powder")) == [uids[1]]
    assert found(cat, q.FullText("Cu foil")) == [uids[0], uids[3]]
    assert found(cat, q.FullText("wafer csx")) == [uids[2]]
    assert found(cat, q.FullText("nothing-like-this")) == []
    assert found(cat, q.Regex("sample", r"^[A-Z]\w+ ")) == [uids[0], uids[1], uids[3]]
    assert found(cat, q.Regex("sample", r"^SILICON", case_sensitive=False)) == [uids[2]]


def test_time_range_scan_id_and_partial_uid(runs):
    cat, uids, times = runs
    assert found(cat, q.TimeRange(since=times[1], until=times[3])) == [uids[1], uids[2]]
    assert found(cat, q.TimeRange(since=times[3])) == [uids[3], uids[4]]
    assert found(cat, q.ScanID(7)) == [uids[3]]
    assert found(cat, q.ScanID(7, duplicates="all")) == [uids[1], uids[3]]
    assert found(cat, q.ScanID(11, 13)) == [uids[0], uids[2]]
    assert found(cat, q.PartialUID(uids[2][:6])) == [uids[2]]


def test_queries_chain_with_and(runs):
    cat, uids, _ = runs
    assert found(cat, q.Eq("beamline", "bmm"), q.Contains("tags", "xas")) == [uids[0]]


def test_stop_and_summary_keys(runs):
    cat, uids, _ = runs
    assert found(cat, q.Eq("stop.exit_status", "success")) == uids
    assert found(cat, q.Eq("summary.num_events.primary", 2)) == [uids[2]]


def test_sort_and_paging(runs):
    cat, uids, _ = runs
    assert list(cat.sort(("start.time", -1))) == uids[::-1]
    by_temp = list(cat.sort(("temperature", 1)))
    assert by_temp[:3] == [uids[1], uids[2], uids[0]]  # numbers first, missing last
    assert cat.keys_range(1, 2) == uids[1:3]
    assert cat.sort(("scan_id", -1)).keys_range(0, 1) == [uids[4]]
    with pytest.raises(q.QueryError, match="direction"):
        cat.sort(("time", 0))


def test_lookups(runs):
    cat, uids, _ = runs
    assert cat[-1].uid == uids[-1]
    assert cat[-2].uid == uids[-2]
    assert cat[7].uid == uids[3]  # newest with that scan_id
    assert cat[uids[2][:8]].uid == uids[2]
    assert cat[uids[2]].uid == uids[2]
    with pytest.raises(NotFound, match="scan_id 999"):
        cat[999]
    with pytest.raises(NotFound, match="out of range"):
        cat[-10]
    with pytest.raises(NotFound, match="zzz"):
        cat["zzz"]
    assert len(cat) == 5
    assert len(cat.search(q.Eq("beamline", "csx"))) == 2


def test_ambiguous_uid_prefix(writer):
    from event_model import compose_run

    for uid in ("abcdef00-0001", "abcdef00-0002"):
        bundle = compose_run(uid=uid)
        writer("start", bundle.start_doc)
        writer("stop", bundle.compose_stop())
    cat = writer.catalog["bmm/raw"]
    with pytest.raises(AmbiguousKey, match="more than one"):
        cat["abcdef00"]
    assert cat["abcdef00-0002"].uid == "abcdef00-0002"
    assert cat["abcdef00-0001"].uid == "abcdef00-0001"


def test_query_parameters_round_trip():
    queries = [
        q.Eq("sample", "Cu"),
        q.Comparison("gt", "temperature", 3.5),
        q.ScanID(1, 2, duplicates="all"),
        q.PartialUID("abc"),
        q.Eq("x", [1, 2]),
        q.TimeRange(since="2022-03-27"),
        q.FullText("foil"),
        q.Regex("a", "^b", False),
    ]
    params = q.to_params(queries)
    assert sorted(map(repr, q.from_params(params))) == sorted(map(repr, queries))
    with pytest.raises(q.QueryError, match="unknown query"):
        q.from_params([("filter[bogus][condition][key]", '"x"')])

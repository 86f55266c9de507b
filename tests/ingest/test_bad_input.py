"""Bad input gets a specific error naming the document; good data is never lost."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from bluesky import plans as bp
from ophyd.sim import det1, det2, motor

from bluebroker.catalog import ExternalDataMissing
from bluebroker.ingest import InvalidDocument, UidConflict, UnknownParent
from tests.compare import assert_run_matches
from tests.devices import HDF5Camera


@pytest.fixture
def scan_docs(RE, recorder):
    RE.subscribe(recorder)
    RE(bp.scan([det1, det2], motor, 0, 1, 5))
    return list(recorder)


def _first(docs, name):
    return next(d for n, d in docs if n == name)


def test_writer_does_not_change_the_documents_it_is_given(writer, scan_docs):
    before = copy.deepcopy(scan_docs)
    writer.write_many(scan_docs)
    assert scan_docs == before


@pytest.mark.parametrize(
    "name, mutate, words",
    [
        ("event", lambda d: d.pop("data"), "data"),
        ("event", lambda d: d.update(seq_num="one"), "seq_num"),
        ("start", lambda d: d.pop("time"), "time"),
        ("descriptor", lambda d: d["data_keys"]["det1"].pop("dtype"), "dtype"),
        (
            "event",
            lambda d: d["data"].update(bogus=1.0) or d["timestamps"].update(bogus=1.0),
            "bogus",
        ),
        ("event", lambda d: d["timestamps"].pop("det1"), "timestamps"),
    ],
)
def test_malformed_document_is_refused_and_nothing_is_lost(writer, scan_docs, name, mutate, words):
    index = next(i for i, (n, _) in enumerate(scan_docs) if n == name)
    good, bad_doc = scan_docs[:index], copy.deepcopy(scan_docs[index][1])
    writer.write_many(good)
    mutate(bad_doc)
    with pytest.raises(InvalidDocument) as info:
        writer(name, bad_doc)
    assert name in str(info.value) and words in str(info.value)
    # The writer keeps working: the rest of the run goes in and reads back exactly.
    writer.write_many(scan_docs[index:])
    start = _first(scan_docs, "start")
    assert_run_matches(writer.catalog["bmm/raw"][start["uid"]], scan_docs)


def test_not_a_document(writer):
    with pytest.raises(InvalidDocument, match="unknown document name"):
        writer("evnt", {"uid": "x"})
    with pytest.raises(InvalidDocument, match="mapping"):
        writer("start", ["not", "a", "dict"])
    with pytest.raises(InvalidDocument, match="pair"):
        writer.write_many(["start"])


def test_duplicates_change_nothing(writer, scan_docs):
    first = writer.write_many(scan_docs)
    assert first.written == len(scan_docs) and first.duplicates == 0
    again = writer.write_many(scan_docs)
    assert again.written == 0 and again.duplicates == len(scan_docs)
    for name, doc in scan_docs:  # one by one, through a fresh writer with empty caches
        type(writer)(writer.catalog, "bmm/raw")(name, doc)
    run = writer.catalog["bmm/raw"][-1]
    assert_run_matches(run, scan_docs)
    assert len(writer.catalog["bmm/raw"]) == 1


def test_conflicting_uids_are_refused(writer, scan_docs):
    writer.write_many(scan_docs)
    start = dict(_first(scan_docs, "start"), plan_name="something else")
    with pytest.raises(UidConflict, match=r"start .*different start"):
        writer("start", start)
    event = copy.deepcopy(_first(scan_docs, "event"))
    event["data"]["det1"] = -1.0
    with pytest.raises(UidConflict, match="event"):
        writer("event", event)
    stop = dict(_first(scan_docs, "stop"), exit_status="abort")
    with pytest.raises(UidConflict):
        writer("stop", stop)
    assert_run_matches(writer.catalog["bmm/raw"][start["uid"]], scan_docs)


def test_unknown_parents(writer, scan_docs):
    event = _first(scan_docs, "event")
    with pytest.raises(UnknownParent, match=r"descriptor .* never received"):
        writer("event", event)
    with pytest.raises(UnknownParent, match="start document was never received"):
        writer("descriptor", _first(scan_docs, "descriptor"))
    with pytest.raises(UnknownParent):
        writer("stop", _first(scan_docs, "stop"))
    writer.write_many(scan_docs)
    assert len(writer.catalog["bmm/raw"][-1]["primary"]["data"]) == 5


def test_lenient_batch_keeps_the_good_documents(writer, scan_docs):
    docs = list(scan_docs)
    bad_event = copy.deepcopy(_first(docs, "event"))
    bad_event["descriptor"] = "nowhere"
    docs.insert(3, ("event", bad_event))
    docs.insert(1, ("bogus", {}))
    result = writer.write_many(docs, strict=False)
    assert [(r.index, r.name) for r in result.rejected] == [(1, "bogus"), (4, "event")]
    assert isinstance(result.rejected[1].error, UnknownParent)
    assert result.written == len(scan_docs)
    assert_run_matches(writer.catalog["bmm/raw"][-1], scan_docs)


def test_strict_batch_writes_nothing_when_one_document_is_bad(writer, scan_docs):
    docs = list(scan_docs)
    docs[-2] = ("event", dict(docs[-2][1], seq_num=None))
    with pytest.raises(InvalidDocument):
        writer.write_many(docs)
    assert len(writer.catalog["bmm/raw"]) == 0
    writer.write_many(scan_docs)  # and the writer's caches did not keep the rolled-back run
    assert_run_matches(writer.catalog["bmm/raw"][-1], scan_docs)


def test_event_page_with_ragged_columns(writer, scan_docs):
    from event_model import pack_event_page

    writer.write_many([p for p in scan_docs if p[0] in ("start", "descriptor")])
    page = pack_event_page(*[d for n, d in scan_docs if n == "event"])
    page["data"]["det1"] = page["data"]["det1"][:-1]
    with pytest.raises(InvalidDocument, match="det1"):
        writer("event_page", page)


def test_missing_external_file_keeps_the_run_readable(RE, writer, recorder, tmp_path):
    cam = HDF5Camera("cam", tmp_path)
    RE.subscribe(writer)
    RE.subscribe(recorder)
    (uid,) = RE(bp.count([cam, det1], num=3))
    cam.path.unlink()
    run = writer.catalog["bmm/raw"][uid]
    table = run["primary"]["data"].read()
    emitted = [d["data"]["det1"] for n, d in recorder if n == "event"]
    np.testing.assert_array_equal(table["det1"], emitted)
    assert run.metadata["stop"]["exit_status"] == "success"
    with pytest.raises(ExternalDataMissing) as info:
        run["primary"]["data"]["cam"][0]
    assert str(cam.path) in str(info.value) and "cam" in str(info.value)


@pytest.mark.parametrize(
    "name, mutate, words",
    [
        ("start", lambda d: d.update(uid="a/b"), "slashes"),
        ("start", lambda d: d.update(uid=".."), "cannot name a node"),
        ("start", lambda d: d.update(uid="a\x00b"), "NUL"),
        ("descriptor", lambda d: d.update(name="x/y"), "stream's name"),
        ("descriptor", lambda d: d.update(name=""), "cannot name a node"),
        ("descriptor", lambda d: d.update(name="p\x07"), "control characters"),
        ("descriptor", lambda d: d["data_keys"].update({"a/b": d["data_keys"]["det1"]}), "a/b"),
        ("descriptor", lambda d: d["configuration"].update({"..": {"data": {}}}), "'..'"),
        ("event", lambda d: d.update(uid="e\x00"), "NUL"),
    ],
)
def test_names_that_cannot_be_stored_or_served_are_refused(
    writer, catalog, scan_docs, name, mutate, words
):
    """A run uid, a stream, field or configuration name is a path segment of the tree; any
    identifier is a database key: refused with its field named, on both backends alike, and
    the good documents after it still go in."""
    index = next(i for i, (n, _) in enumerate(scan_docs) if n == name)
    writer.write_many(scan_docs[:index])
    bad_doc = copy.deepcopy(scan_docs[index][1])
    mutate(bad_doc)
    result = writer.write_many([(name, bad_doc)], strict=False)
    assert result.written == 0 and len(result.rejected) == 1
    reason = str(result.rejected[0].error)
    assert words in reason and "SQL" not in reason, reason
    if name == "event":  # the rest of the run goes in and reads back exactly
        writer.write_many(scan_docs[index:])
        start = _first(scan_docs, "start")
        run = catalog["bmm/raw"][start["uid"]]
        assert len(run["primary"]["data"].read()) == 5


def test_a_failed_statement_is_refused_without_its_sql(writer, catalog):
    """A document the database itself refuses comes back with the database's reason, not the
    SQL text and its parameters (the reason goes to publishers)."""
    from event_model import compose_run

    start = compose_run(metadata={"sample": "\ud800"}).start_doc
    result = writer.write_many([("start", start)], strict=False)
    (rejected,) = result.rejected
    reason = str(rejected.error)
    assert "could not be stored" in reason and "SELECT" not in reason and "[SQL" not in reason

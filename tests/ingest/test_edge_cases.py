"""Documents the RunEngine rarely sends but a data service must survive: varying shapes,
missing fields, races between writers, pages that overlap singles, odd values."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from event_model import compose_run, pack_event_page

from bluebroker import queries as q
from bluebroker.ingest import CatalogWriter, InvalidDocument, UidConflict


def _run(keys, **start_md):
    bundle = compose_run(metadata=start_md)
    desc = bundle.compose_descriptor(name="primary", data_keys=keys)
    return bundle, desc


def _event(desc, data, t=1.0):
    return desc.compose_event(data=data, timestamps={k: t for k in data})


def test_waveforms_of_varying_length(writer):
    bundle, desc = _run({"wave": {"source": "s", "dtype": "array", "shape": [None]}})
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    waves = [np.arange(3 + i % 2, dtype=float) for i in range(40)]
    for w in waves:  # one per transaction, so chunks get merged along the way
        writer("event", _event(desc, {"wave": w}))
    node = writer.catalog["bmm/raw"][-1]["primary"]["data"]["wave"]
    got = node.read()
    assert len(got) == 40
    for a, b in zip(got, waves, strict=True):
        np.testing.assert_array_equal(a, b)


def test_stream_without_events_and_external_only_stream(writer, tmp_path):
    from tests.devices import StreamHDF5Camera

    bundle, desc = _run({"x": {"source": "s", "dtype": "number", "shape": []}})
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    run = writer.catalog["bmm/raw"][-1]
    assert len(run["primary"]["data"].read()) == 0
    assert run["primary"].read()["x"].shape == (0,)
    # A fly-scan stream: frames announced by stream_datum only, no event documents.
    cam = StreamHDF5Camera("fly", tmp_path, shape=(2, 3))
    cam.stage()
    keys = cam.describe()
    keys["fly"]["shape"] = [None, 3]  # a dimension the descriptor leaves open
    fly = bundle.compose_descriptor(name="fly", data_keys=keys)
    writer("descriptor", fly.descriptor_doc)
    ((_, sres),) = cam.collect_asset_docs()
    writer("stream_resource", dict(sres, run_start=bundle.start_doc["uid"]))
    for i in range(3):
        cam.trigger()
        ((_, sdatum),) = cam.collect_asset_docs()
        sdatum = dict(
            sdatum, descriptor=fly.descriptor_doc["uid"], seq_nums={"start": i + 1, "stop": i + 2}
        )
        writer("stream_datum", sdatum)
    cam.unstage()
    stream = writer.catalog["bmm/raw"][-1]["fly"]
    assert len(stream["data"]) == 3
    np.testing.assert_array_equal(stream["data"]["fly"][:], np.stack(cam.frames))
    table = stream["data"].read()
    assert len(table) == 3 and table["time"].isna().all()


def test_a_stale_writer_cannot_overwrite_a_stop(catalog):
    first, second = CatalogWriter(catalog, "bmm/raw"), CatalogWriter(catalog, "bmm/raw")
    bundle, desc = _run({"x": {"source": "s", "dtype": "number", "shape": []}})
    first("start", bundle.start_doc)
    second("descriptor", desc.descriptor_doc)
    stop = bundle.compose_stop()
    second("stop", stop)
    with pytest.raises(UidConflict):
        first("stop", dict(stop, exit_status="abort"))
    assert first.write_many([("stop", stop)]).duplicates == 1
    run = catalog["bmm/raw"][-1]
    assert [n for n, _ in run.documents()] == ["start", "descriptor", "stop"]
    assert run.metadata["stop"]["exit_status"] == "success"


def test_duplicate_and_conflicting_datums_in_one_batch(writer, tmp_path):
    bundle, _ = _run({})
    res = bundle.compose_resource(
        spec="AD_HDF5", root=str(tmp_path), resource_path="x.h5", resource_kwargs={}
    )
    datum = res.compose_datum(datum_kwargs={"point_number": 0})
    conflicting = dict(datum, datum_kwargs={"point_number": 9})
    result = writer.write_many(
        [
            ("start", bundle.start_doc),
            ("resource", res.resource_doc),
            ("datum", datum),
            ("datum", datum),
            ("datum", conflicting),
        ],
        strict=False,
    )
    assert (result.written, result.duplicates) == (3, 1)
    assert [r.index for r in result.rejected] == [4]
    names = [n for n, _ in writer.catalog["bmm/raw"][-1].documents()]
    assert names == ["start", "resource", "datum"]


def test_integers_stay_exact_beside_events_without_them(writer):
    keys = {
        "n": {"source": "s", "dtype": "integer", "shape": []},
        "x": {"source": "s", "dtype": "number", "shape": []},
    }
    bundle, desc = _run(keys)
    writer.write_many([("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)])
    big = 2**60 + 1
    for i in range(20):
        writer("event", _event(desc, {"n": big + i, "x": 0.5}))
    for _ in range(20):  # some producers leave fields out; event-model would refuse these
        writer("event", desc.compose_event(data={"x": 1.5}, timestamps={"x": 1.0}, validate=False))
    node = writer.catalog["bmm/raw"][-1]["primary"]["data"]["n"]
    first = node[:20]
    assert first.dtype == np.int64 and first.tolist() == [big + i for i in range(20)]
    assert np.isnan(node[20:].astype(float)).all()


def test_event_page_checks(writer):
    bundle, desc = _run({"x": {"source": "s", "dtype": "number", "shape": []}})
    writer.write_many([("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)])
    events = [_event(desc, {"x": float(i)}) for i in range(3)]
    page = pack_event_page(*events)
    long_ts = copy.deepcopy(page)
    long_ts["timestamps"]["x"].append(9.0)
    with pytest.raises(InvalidDocument, match=r"timestamps\['x'\] has 4 values for 3"):
        writer("event_page", long_ts)
    twice = copy.deepcopy(page)
    twice["uid"][1] = twice["uid"][0]
    with pytest.raises(InvalidDocument, match="same event uid"):
        writer("event_page", twice)
    writer("event_page", page)
    np.testing.assert_array_equal(
        writer.catalog["bmm/raw"][-1]["primary"]["data"]["x"][:], [0.0, 1.0, 2.0]
    )


def test_an_event_seen_alone_and_in_a_page_is_one_event(writer):
    bundle, desc = _run({"x": {"source": "s", "dtype": "number", "shape": []}})
    writer.write_many([("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)])
    events = [_event(desc, {"x": i}) for i in range(3)]  # ints, as a device may send them
    single = {k: v for k, v in events[0].items() if k != "filled"}
    writer("event", single)
    page = pack_event_page(*events[:1])
    page["data"]["x"] = np.asarray(page["data"]["x"], dtype=float)
    assert writer.write_many([("event_page", page)]).duplicates == 1


def test_odd_values_do_not_stop_the_writer(writer):
    keys = {
        "n": {"source": "s", "dtype": "integer", "shape": []},
        "label": {"source": "s", "dtype": "string", "shape": []},
    }
    bundle, desc = _run(keys, note="nul\x00byte", positions=list(range(100_000)))
    writer.write_many([("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)])
    with pytest.raises(InvalidDocument, match=r"could not be stored.*out of range"):
        writer("event", _event(desc, {"n": 2**64, "label": "a"}))  # beyond 64 bits
    first = _event(desc, {"n": 2**63 - 1, "label": "a"})
    bad = _event(desc, {"n": 1, "label": {"a", "set"}})  # not storable as a document
    good = _event(desc, {"n": 2, "label": "b"})
    result = writer.write_many([("event", first), ("event", bad), ("event", good)], strict=False)
    assert result.written == 2 and [r.index for r in result.rejected] == [1]
    assert "could not be stored" in str(result.rejected[0].error)
    run = writer.catalog["bmm/raw"][-1]
    assert run["primary"]["data"]["label"][:].tolist() == ["a", "b"]
    assert run.metadata["start"]["note"] == "nulbyte"


def test_search_behaves_the_same_on_both_backends(writer):
    for md in (
        {
            "detectors": ["det1", "det2"],
            "person": {"name": "Jane", "site": "bnl"},
            "email": "jane@bnl.gov",
            "path": "/nsls2/data/xpd",
        },
        {"detectors": ["det2"], "person": {"site": "bnl", "name": "Joe"}},
    ):
        bundle = compose_run(metadata=md)
        writer.write_many([("start", bundle.start_doc), ("stop", bundle.compose_stop())])
    cat = writer.catalog["bmm/raw"]
    first = cat.keys_range(0, 1)
    assert list(cat.search(q.Eq("person", {"site": "bnl", "name": "Jane"}))) == first
    assert list(cat.search(q.Eq("detectors.0", "det1"))) == first
    for words in ("bnl.gov", "jane", "nsls2", "/nsls2/data", "xpd"):
        assert list(cat.search(q.FullText(words))) == first, words

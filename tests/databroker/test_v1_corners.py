"""The corners of Databroker 1.2.5's v1 API that the facade closes: ``db.reg``/``db.fs``,
external fetchers (``header.ext``), ``stream_names_given_header``, the legacy document names
``insert`` takes (``bulk_events``, ``bulk_datum``), ``export`` to another Broker, and the
warnings 1.2.5 gave for deprecated uses."""

from __future__ import annotations

import copy
import uuid

import numpy as np
import pytest
from bluesky import plans as bp
from ophyd.sim import det1, det2, motor


def test_reg_and_fs_say_the_handlers_are_the_servers(db):
    assert db.reg.handler_reg == {} and db.reg.root_map == {}
    with pytest.warns(UserWarning, match="has no effect"):
        db.reg.register_handler("AD_HDF5", object)
    with pytest.warns(UserWarning, match="has no effect"):
        db.reg.deregister_handler("AD_HDF5")
    with pytest.raises(NotImplementedError, match="--root-map"):
        db.reg.copy_files({"uid": "r"}, "/new")
    with pytest.warns(UserWarning, match="fs is deprecated"):
        assert db.fs is db.reg


def test_external_fetchers_fill_header_ext(RE_db, server):
    from databroker import Broker

    (uid,) = RE_db(bp.count([det1], num=2, md={"sample": "Cu"}))
    seen = []

    def sample(start, stop):
        seen.append((start["uid"], stop["exit_status"]))
        return start["sample"].lower()

    db = Broker.from_config({"uri": server, "catalog": "csx/raw"})
    db.external_fetchers["sample"] = sample
    header = db[uid]
    assert header.ext.sample == "cu" and seen == [(uid, "success")]
    assert db.fetch_external(header.start, header.stop) == {"sample": "cu"}
    assert db.stream_names_given_header(header) == ["primary"]


def test_insert_takes_bulk_events_and_bulk_datum(db, RE, recorder):
    RE.subscribe(recorder)
    RE(bp.scan([det1, det2], motor, 0, 1, 4))
    docs = list(recorder)
    events = [d for n, d in docs if n == "event"]
    for name, doc in docs:
        if name != "event":
            db.insert(name, doc)
            if name == "descriptor" and doc["name"] == "primary":
                with pytest.warns(DeprecationWarning, match="bulk_events"):
                    db.insert("bulk_events", {doc["uid"]: copy.deepcopy(events)})
    header = db[-1]
    np.testing.assert_array_equal(header.table()["det1"], [e["data"]["det1"] for e in events])
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="lists of events"):
        db.insert("bulk_events", [events[0]])
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="'datum_ids' and"):
        db.insert("bulk_datum", {"resource": "r"})


def test_bulk_datum_reaches_the_server(db, tmp_path):
    """A run whose datums come as one bulk_datum: its documents hold each datum."""
    start = {"uid": str(uuid.uuid4()), "time": 1.7e9}
    resource = {
        "uid": str(uuid.uuid4()),
        "run_start": start["uid"],
        "spec": "NPY_SEQ",
        "root": str(tmp_path),
        "resource_path": "frames",
        "resource_kwargs": {},
        "path_semantics": "posix",
    }
    ids = [f"{resource['uid']}/{i}" for i in range(3)]
    db.insert("start", start)
    db.insert("resource", resource)
    with pytest.warns(DeprecationWarning, match="bulk_datum"):
        db.insert(
            "bulk_datum",
            {
                "resource": resource["uid"],
                "datum_ids": ids,
                "datum_kwarg_list": [{"index": i} for i in range(3)],
            },
        )
    stored = [d for n, d in db[start["uid"]].documents() if n in ("datum", "datum_page")]
    got = []
    for doc in stored:
        got += doc["datum_id"] if isinstance(doc["datum_id"], list) else [doc["datum_id"]]
    assert got == ids


def test_export_copies_runs_into_another_broker(RE_db, db, recorder):
    from databroker import temp

    (uid,) = RE_db(bp.scan([det1], motor, 0, 1, 3))
    other = temp()
    assert db.export(db[uid], other) == []
    copied = other[uid]
    assert copied.start == db[uid].start and copied.stop == db[uid].stop
    assert copied.table().equals(db[uid].table())
    with pytest.raises(NotImplementedError, match="--root-map"):
        db.export(db[uid], other, new_root="/elsewhere")
    with pytest.raises(NotImplementedError, match="data_sources"):
        db.export_size(db[uid])


def test_start_time_and_stop_time_warn_as_in_1_2_5(RE_db, db):
    (uid,) = RE_db(bp.count([det1]))
    with pytest.warns(UserWarning, match="'start_time' and 'stop_time' are deprecated"):
        found = list(db(start_time=0, stop_time=4e9))
    assert [h.uid for h in found] == [uid]
    with pytest.warns(UserWarning), pytest.raises(TypeError, match="cannot use both"):
        list(db(since=0, start_time=0))

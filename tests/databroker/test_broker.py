"""Finding runs with the legacy Broker: indexing, slicing, searching, aliases, filters,
configuration by name, temp(). Semantics are Databroker 1.2.5's."""

from __future__ import annotations

import time

import pytest
from bluesky import plans as bp
from ophyd.sim import det1, det2, motor

import databroker
from databroker import Broker, Header


def _uids(recorder):
    return [d["uid"] for n, d in recorder if n == "start"]


def test_getitem_by_position_scan_id_uid_and_prefix(RE_db, db, recorder):
    RE_db(bp.count([det1], num=2), scan_id=7)
    RE_db(bp.count([det1], num=2), scan_id=8)
    RE_db(bp.count([det1], num=2), scan_id=7)  # a repeated scan_id: the newest one wins
    first, second, third = _uids(recorder)
    assert db[-1].uid == third and db[-3].uid == first
    assert db[7].uid == third and db[8].uid == second
    assert db["8"].uid == second and db["-1"].uid == third
    assert db[first].uid == first and db[first[:8]].uid == first
    assert [h.uid for h in db[-3:]] == [third, second, first]  # newest first
    assert [h.uid for h in db[-3:-1]] == [second, first]
    assert [h.uid for h in db[[first, -1]]] == [first, third]
    assert isinstance(db[-1], Header)
    with pytest.raises(KeyError):
        db["00000000-not-a-run"]
    with pytest.raises(KeyError):
        db[12345]
    with pytest.raises(IndexError):
        db[-4]
    with pytest.raises(ValueError, match=r"slice\.start must be negative"):
        db[1:]
    with pytest.raises(ValueError, match=r"slice\.start cannot be None"):
        db[:-1]


def test_an_all_digit_uid_prefix_finds_its_run_when_no_scan_id_matches(RE, db):
    """One uid in ~40 starts with eight decimal digits; '47887557' is then a uid prefix, not a
    scan_id (a random uid made the test above fail once in CI)."""
    digits_uid = "47887557-2401-48f4-974c-9017b6e9289c"
    emitted = []
    RE(bp.count([det1], num=1), lambda name, doc: emitted.append((name, dict(doc))), scan_id=3)
    original = emitted[0][1]["uid"]
    for name, doc in emitted:  # the same run, published under a uid made of digits
        for key in ("uid", "run_start"):
            if doc.get(key) == original:
                doc[key] = digits_uid
        db.insert(name, doc)
    RE.subscribe(db.insert)
    RE(bp.count([det1], num=1), scan_id=47887557)
    by_scan_id = db[-1].uid
    assert db["47887557"].uid == by_scan_id  # a scan_id that exists still wins, as in 1.2.5
    assert db["4788755"].uid == digits_uid
    assert db["3"].uid == digits_uid
    with pytest.raises(KeyError, match="no run with scan_id 999 and none whose uid starts"):
        db["999"]


def test_ambiguous_prefix_is_a_value_error(db):
    for uid in ("abcdef-1", "abcdef-2"):
        db.insert("start", {"uid": uid, "time": time.time()})
    assert db["abcdef-1"].uid == "abcdef-1"
    with pytest.raises(ValueError, match="more than one"):
        db["abcdef"]


def test_search_keywords_operators_times_text_and_data_key(RE_db, db, recorder):
    RE_db(bp.count([det1], num=1), sample="Cu foil", num=1)
    t_between = time.time()
    time.sleep(0.05)
    RE_db(bp.scan([det2], motor, 0, 1, 3), sample="Fe", num=5)
    RE_db(bp.count([det2], num=1), sample="Si wafer", num=9)
    cu, fe, si = _uids(recorder)

    def found(results):
        return [h.uid for h in results]

    assert found(db(plan_name="count")) == [si, cu]  # newest first
    assert found(db(sample="Fe")) == [fe]
    assert found(db(num={"$gte": 5})) == [si, fe]
    assert found(db(num={"$in": [1, 9]})) == [si, cu]
    assert found(db(num={"$gt": 1, "$lt": 9})) == [fe]
    assert found(db(sample={"$ne": "Fe"})) == [si, cu]
    assert found(db(since=t_between)) == [si, fe]
    assert found(db(until=t_between)) == [cu]
    today = time.strftime("%Y-%m-%d")
    assert found(db(since=today)) == [si, fe, cu]
    assert found(db(since="2001", until="2002")) == []
    assert found(db(text_search="wafer")) == [si]
    assert found(db(data_key="det1")) == [cu]
    with pytest.raises(ValueError, match="failed to parse time"):
        db(since="yesterday-ish")
    with pytest.raises(ValueError, match="not supported"):
        db(num={"$where": "1"})


def test_filters_and_aliases(RE_db, db, recorder):
    RE_db(bp.count([det1], num=1), operator="ann")
    RE_db(bp.count([det1], num=1), operator="bob")
    ann, bob = _uids(recorder)
    db.add_filter(operator="ann")
    assert [h.uid for h in db(plan_name="count")] == [ann]
    assert db.filters == {"operator": "ann"}
    db.clear_filters()
    assert [h.uid for h in db(plan_name="count")] == [bob, ann]
    db.alias("bobs", operator="bob")
    assert [h.uid for h in db.bobs] == [bob]
    who = ["ann"]
    db.dynamic_alias("mine", lambda: {"operator": who[0]})
    assert [h.uid for h in db.mine] == [ann]
    who[0] = "bob"
    assert [h.uid for h in db.mine] == [bob]
    with pytest.raises(ValueError, match="not a legal alias"):
        db.alias("insert", operator="x")
    with pytest.raises(AttributeError):
        getattr(db, "no_such_alias")  # noqa: B009


def test_named_configs_are_found_in_order(server, tmp_path, monkeypatch):
    home = tmp_path / "home"
    user = home / ".config" / "databroker"
    user.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    (user / "csx.yml").write_text(f"uri: {server}\ncatalog: csx/raw\ndescription: CSX\n")
    (user / "broken.yml").write_text(f"uri: {server}\n")
    db = Broker.named("csx")
    assert db.name == "csx" and db.get_config()["catalog"] == "csx/raw"
    assert db.v1 is db
    assert "csx" in databroker.list_configs()
    assert databroker.describe_configs()["csx"] == "CSX"
    with pytest.raises(FileNotFoundError) as err:
        Broker.named("nowhere")
    message = str(err.value)
    assert str(user / "nowhere.yml") in message and "/etc/databroker/nowhere.yml" in message
    with pytest.raises(ValueError, match="lacks catalog"):
        Broker.named("broken")
    assert list(databroker.catalog) == ["broken", "csx"]


def test_temp_broker_needs_no_setup(RE):
    db = databroker.temp()
    RE.subscribe(db.insert)
    (uid,) = RE(bp.count([det1, det2], num=3))
    assert db[-1].uid == uid
    assert list(db[-1].table().columns) == ["time", "det1", "det2"]
    other = Broker.named("temp")
    assert len(list(other(plan_name="count"))) == 0  # a separate, empty catalog
    assert db.stats()["runs"] == 1


def test_insert_refusals_say_why(db):
    with pytest.raises(ValueError, match="refused the event"):
        db.insert("event", {"uid": "e", "descriptor": "never-sent", "time": 1.0})


def test_fill_event_is_gone_as_in_1_2_5(db):
    with pytest.raises(NotImplementedError, match="no longer supported"):
        db.fill_event({})

"""Two users with different proposals on one server: each sees only their own runs, in every
way a run can be reached (search, counts, listing, look-ups, documents, tables, arrays, exports,
live notices); the other's uid typed by hand is a 404, never a 403 that confirms it exists."""

from __future__ import annotations

import json

import httpx
import pytest
from bluesky import plans as bp
from ophyd.sim import det1, motor
from websockets.sync.client import connect

from bluebroker.catalog.access import Access, Grant, reading_as
from bluebroker.ingest import CatalogWriter
from bluebroker.server.api_keys import ApiKeyStore
from bluebroker.server.auth import AuthSettings
from bluebroker.server.policy import AccessPolicy, PolicyError
from bluebroker.server.principals import Principal
from bluebroker.server.run import background_server

POLICY = {
    "grants": [
        {"to": {"signed_in": True}, "runs": {"data_session": "{groups}"}},
        {"to": {"groups": ["bmm-staff"]}, "catalogs": ["bmm"]},
        {"to": {"anyone": True}, "runs": {"public": True}},
    ]
}


@pytest.fixture
def sessions(RE, catalog):
    """Runs of two proposals and one public run, acquired with the RunEngine."""
    writer = CatalogWriter(catalog, "bmm/raw")
    token = RE.subscribe(writer)
    uids = {"pass-1": [], "pass-2": [], "public": []}
    for session in ("pass-1", "pass-2", "pass-1", "pass-2", "pass-2"):
        uids[session] += RE(bp.scan([det1], motor, 0, 1, 3), data_session=session)
    uids["public"] += RE(bp.count([det1]), data_session="pass-9", public=True)
    RE.unsubscribe(token)
    return writer, uids


def _keys(catalog):
    store = ApiKeyStore(catalog.engine)
    scopes = {"read:metadata", "read:data"}
    alice, _ = store.create("user:test:alice", scopes, groups={"pass-1"})
    bob, _ = store.create("user:test:bob", scopes, groups={"pass-2", "pass-7"})
    staff, _ = store.create("user:test:carol", scopes, groups={"bmm-staff"})
    return store, {"alice": alice, "bob": bob, "carol": staff}


def test_each_user_reads_only_their_runs_everywhere(catalog, sessions, monkeypatch):
    monkeypatch.delenv("BLUEBROKER_API_KEY")
    writer, uids = sessions
    store, keys = _keys(catalog)
    auth = AuthSettings(
        token="owner-token", public=True, keys=store, policy=AccessPolicy.from_dict(POLICY)
    )
    with background_server(catalog, auth=auth) as url:
        api = f"{url}/api/v1"

        def get(who, route, **params):
            headers = {"Authorization": f"Bearer {keys[who]}"} if who in keys else {}
            return httpx.get(f"{api}/{route}", params=params, headers=headers)

        def found(who, **params):
            page = get(who, "search/bmm/raw", **params).json()
            return page["meta"]["count"], {d["id"] for d in page["data"]}

        mine = set(uids["pass-1"]) | set(uids["public"])
        assert found("alice") == (3, mine)
        assert found("bob") == (4, set(uids["pass-2"]) | set(uids["public"]))
        assert found("carol")[0] == 6 and found("anonymous") == (1, set(uids["public"]))
        assert found(
            "alice",
            **{
                "filter[eq][condition][key]": "data_session",
                "filter[eq][condition][value]": '"pass-2"',
            },
        ) == (0, set())
        # the catalog's own count and the listing above it say the same
        meta = get("alice", "metadata/bmm/raw").json()["data"]["attributes"]
        assert meta["structure"]["count"] == 3
        # look-ups by uid, by partial uid and everything under another's run: 404
        other = uids["pass-2"][0]
        for route in (
            f"metadata/bmm/raw/{other}",
            f"metadata/bmm/raw/{other}/primary",
            f"search/bmm/raw/{other}/primary/data",
            f"table/full/bmm/raw/{other}/primary/data",
            f"array/full/bmm/raw/{other}/primary/data/det1",
            f"documents/bmm/raw/{other}",
            f"container/full/bmm/raw/{other}/primary",
            f"metadata/bmm/raw/{other[:8]}",
        ):
            denied = get("alice", route)
            assert denied.status_code == 404, (route, denied.text)
            assert other not in denied.text.replace(other[:8], "") or route.endswith(other[:8])
        own = uids["pass-1"][0]
        assert get("alice", f"table/full/bmm/raw/{own}/primary/data").status_code == 200
        assert get("alice", f"documents/bmm/raw/{own}").status_code == 200
        assert get("bob", f"table/full/bmm/raw/{own}/primary/data").status_code == 404
        # the Python client sees the same catalog
        from bluebroker.client import from_uri

        runs = from_uri(url, api_key=keys["alice"])["bmm"]["raw"]
        assert len(runs) == 3 and set(runs) == mine
        assert runs[-1].metadata["start"]["uid"] == uids["public"][0]

        # live: a subscriber to the catalog hears of its own new runs only
        path = "bmm/raw"
        ws = f"{url.replace('http', 'ws')}/api/v1/stream/single/{path}?api_key={keys['alice']}"
        with connect(ws) as conn:
            assert json.loads(conn.recv(timeout=10))["type"] == "schema"
            from bluesky import RunEngine

            RE = RunEngine()
            RE.subscribe(writer)
            (hidden,) = RE(bp.count([det1]), data_session="pass-2")
            (shown,) = RE(bp.count([det1]), data_session="pass-1")
            heard = []
            while not any(m.get("type") == "run-stopped" and m.get("uid") == shown for m in heard):
                heard.append(json.loads(conn.recv(timeout=10)))
        assert {m.get("uid") for m in heard} == {shown}
        assert hidden not in json.dumps(heard)
        # Server-Sent Events, replaying the catalog's whole history: only Alice's runs
        replayed = []
        sse = f"{api}/stream/single/{path}"
        params = {"start": 1, "api_key": keys["alice"]}
        with httpx.stream("GET", sse, params=params, timeout=10) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    replayed.append(json.loads(line[6:]))
                    last = replayed[-1]
                    if last.get("type") == "run-stopped" and last.get("uid") == shown:
                        break
        told = {m["uid"] for m in replayed if "uid" in m}
        assert told == mine | {shown}
        assert not told & (set(uids["pass-2"]) | {hidden})
        # a subscription to another's run is refused as not found
        other_ws = ws.replace(path, f"{path}/{other}")
        with connect(other_ws) as conn, pytest.raises(Exception) as closed:
            conn.recv(timeout=10)
        assert closed.value.rcvd.code == 4404


def test_policy_rules_and_their_mistakes():
    policy = AccessPolicy.from_dict(POLICY)
    owner = Principal("owner", "owner", frozenset({"read:data"}))
    assert policy.access_for(owner) is None
    admin = Principal("user:x:root", "user", frozenset({"admin"}))
    assert policy.access_for(admin) is None
    nobody = Principal("user:x:n", "user", frozenset({"read:data"}))  # in no group
    grants = policy.access_for(nobody).grants
    assert len(grants) == 1 and grants[0].queries[0].key == "public"  # "{groups}" gives none
    for bad, words in (
        ({"grants": "all"}, "a list under 'grants'"),
        ({"grants": [{"to": {"everyone": True}}]}, "'to' needs one or more of"),
        ({"grants": [{"to": {"anyone": True}, "run": {}}]}, "unknown key 'run'"),
        ({"grants": [{"to": {"anyone": True}, "runs": {"a": [{"b": 1}]}}]}, "plain values"),
        ({"grants": [{"to": {"groups": "x"}, "runs": {"": 1}}]}, "runs."),
    ):
        with pytest.raises(PolicyError, match=words[:20].replace("(", r"\(")):
            AccessPolicy.from_dict(bad)


def test_access_is_sql_on_both_backends(catalog, sessions):
    """Straight on the catalog: counts, indexes and scan_id look-ups respect the grant."""
    _, uids = sessions
    runs = catalog.node("bmm/raw")
    from bluebroker import queries as q

    only = Access((Grant(None, (q.In("data_session", ("pass-1",)),)),))
    with reading_as(only):
        assert len(runs) == 2 and set(runs) == set(uids["pass-1"])
        assert runs.by_index(-1).uid == uids["pass-1"][-1]
        assert uids["pass-2"][0] not in runs
    with reading_as(Access(())):
        assert len(runs) == 0 and list(runs) == []
    with reading_as(Access((Grant(("cms",)),))):  # another beamline's catalogs only
        assert len(runs) == 0
    assert len(runs) == 6  # outside a request: everything

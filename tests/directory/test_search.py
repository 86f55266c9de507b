"""Searching a served folder looks in its whole subtree, and only there: through the Python
client, over plain HTTP, and in-process."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from bluebroker.queries import FullText, Key


def h5(path: Path, sample: str, data: np.ndarray | None = None) -> None:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["sample"] = sample
        group = f.create_group("entry")
        group.attrs["NX_class"] = "NXentry"
        group.create_dataset("counts", data=np.arange(6) if data is None else data)


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """Files of one sample at several depths, in folders whose names are prefixes of each
    other or hold LIKE's wildcards ('_', '%'), beside files of another sample."""
    root = tmp_path / "lake"
    h5(root / "a" / "x.h5", "cu", np.arange(10) * 2)
    h5(root / "a" / "b" / "y.h5", "cu")
    h5(root / "a" / "b" / "deeper" / "z.h5", "cu")
    h5(root / "a" / "b" / "other.h5", "fe")
    h5(root / "ab" / "x.h5", "cu")  # 'a' is a prefix of 'ab': not under /a
    h5(root / "a_" / "x.h5", "cu")  # '_' is LIKE's one-character wildcard
    h5(root / "a%" / "x.h5", "cu")
    h5(root / "top.h5", "cu")
    return root


@pytest.fixture
def served(catalog, lake):
    from bluebroker.client import from_uri
    from bluebroker.directory import DirectorySource
    from bluebroker.server.run import background_server

    src = DirectorySource(catalog, lake, "files")
    src.register()
    catalog.mount("files", src)
    with background_server(catalog) as url:
        yield from_uri(url), url, src


def test_search_finds_matches_anywhere_below_and_nothing_outside(served):
    c, _, _ = served
    files = c["files"]
    cu = Key("sample") == "cu"
    assert sorted(files["a"].search(cu)) == ["b/deeper/z.h5", "b/y.h5", "x.h5"]
    assert sorted(files["a"]["b"].search(cu)) == ["deeper/z.h5", "y.h5"]
    assert list(files["a_"].search(cu)) == ["x.h5"]
    assert list(files["a%"].search(cu)) == ["x.h5"]
    assert sorted(files.search(cu)) == sorted(
        ["a%/x.h5", "a/b/deeper/z.h5", "a/b/y.h5", "a/x.h5", "a_/x.h5", "ab/x.h5", "top.h5"]
    )
    assert list(files["a"]["b"].search(Key("sample") == "fe")) == ["other.h5"]
    assert len(files["a"].search(cu)) == 3
    # Inside HDF5 files too: groups by their attributes, from a folder two levels up.
    assert sorted(files["a"]["b"].search(Key("NX_class") == "NXentry")) == [
        "deeper/z.h5/entry",
        "other.h5/entry",
        "y.h5/entry",
    ]
    # Full text and a second condition narrow the same subtree.
    assert list(files["a"].search(FullText("fe"))) == ["b/other.h5"]
    assert list(files["ab"].search(FullText("fe"))) == []
    both = files["a"].search(cu).search(Key("sample") != "fe")
    assert sorted(both) == ["b/deeper/z.h5", "b/y.h5", "x.h5"]


def test_a_deep_match_reads_like_any_node(served):
    c, url, _ = served
    hits = c["files"]["a"].search(Key("NX_class") == "NXentry")
    entry = hits["x.h5/entry"]
    assert entry.metadata["NX_class"] == "NXentry"
    np.testing.assert_array_equal(entry["counts"][2:5], [4, 6, 8])
    by_key = dict(hits.items())
    assert sorted(by_key) == [
        "b/deeper/z.h5/entry",
        "b/other.h5/entry",
        "b/y.h5/entry",
        "x.h5/entry",
    ]
    np.testing.assert_array_equal(by_key["x.h5/entry"]["counts"][:], np.arange(10) * 2)
    # Over HTTP: the key is the path from the searched folder, the links lead to the node.
    r = httpx.get(
        f"{url}/api/v1/search/files/a",
        params={
            "filter[eq][condition][key]": '"sample"',
            "filter[eq][condition][value]": '"cu"',
            "sort": "name",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["meta"]["count"] == 3
    ids = [d["id"] for d in body["data"]]
    assert sorted(ids) == ["b/deeper/z.h5", "b/y.h5", "x.h5"]
    for item in body["data"]:
        assert item["links"]["self"] == f"{url}/api/v1/metadata/files/a/{item['id']}"
        again = httpx.get(item["links"]["self"])
        assert again.status_code == 200
        assert again.json()["data"]["attributes"]["metadata"]["sample"] == "cu"


def test_subtree_search_pages_and_sorts(served):
    c, url, _ = served
    found = c["files"].search(Key("sample") == "cu")
    keys = list(found.keys())
    assert len(keys) == 7
    # page by page over HTTP: the same keys, each once
    params = {
        "filter[eq][condition][key]": '"sample"',
        "filter[eq][condition][value]": '"cu"',
        "page[limit]": "2",
        "fields": "",
    }
    seen = []
    for offset in range(0, 8, 2):
        page = httpx.get(
            f"{url}/api/v1/search/files", params={**params, "page[offset]": str(offset)}
        ).json()
        seen += [d["id"] for d in page["data"]]
    assert sorted(seen) == sorted(keys)
    assert len(seen) == len(set(seen))


def test_in_process_search_refuses_what_does_not_match(catalog, lake):
    from bluebroker.catalog import NotFound
    from bluebroker.directory import DirectorySource

    src = DirectorySource(catalog, lake, "")  # served at the root
    src.register()
    root = src.node(())
    hits = root.search(Key("sample") == "fe")
    assert list(hits) == ["a/b/other.h5"]
    assert hits["a/b/other.h5"].metadata["sample"] == "fe"
    assert hits["a/b/other.h5/entry"].metadata["NX_class"] == "NXentry"  # inside a match
    with pytest.raises(NotFound, match="does not match"):
        hits["a/x.h5"]
    ((key, node),) = hits.items_range()  # what the search route lists
    assert key == "a/b/other.h5" and node.path == ("a/b/other.h5",)
    assert node.metadata["sample"] == "fe"

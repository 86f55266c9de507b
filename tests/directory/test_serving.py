"""A served folder read back through the real HTTP server and the Python client."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest

from bluebroker.queries import FullText, Key


def test_listing_shows_every_kind_with_its_structure(client):
    c, _ = client
    files = c["files"]
    assert sorted(files) == sorted(
        [
            "broken.h5",
            "cu.xdi",
            "images",
            "notes.txt",
            "scan.csv",
            "scan.parquet",
            "scan.tsv",
            "scans",
        ]
    )
    assert sorted(files["images"]) == ["det", "flat.tif"]
    assert files["scans"]["copper.nxs"].structure_family == "container"
    assert files["scan.csv"].structure_family == "table"
    assert files["images"]["det"].structure_family == "array"


def test_hdf5_attributes_are_metadata_and_slices_match_h5py(client, tree):
    c, url = client
    _, values = tree
    entry = c["files"]["scans"]["copper.nxs"]["entry"]
    assert entry.metadata["NX_class"] == "NXentry"
    assert entry.metadata["title"] == "copper foil edge scan"
    counts = entry["data"]["counts"]
    assert counts.metadata["units"] == "counts"
    assert counts.shape == (200, 300)
    frames = values["frames"]
    for index in [
        (slice(10, 50), slice(0, 300, 7)),
        (5,),
        (slice(None, None, -3), -1),
        (slice(190, None), slice(-20, None)),
    ]:
        np.testing.assert_array_equal(counts[index], frames[index])
    assert entry["data"]["label"].read() == "edge"
    # Over plain HTTP: raw bytes with the shape in the headers.
    r = httpx.get(
        f"{url}/api/v1/array/full/files/scans/copper.nxs/entry/data/counts",
        params={"slice": "3:5,7:9", "format": "application/octet-stream"},
    )
    assert r.status_code == 200
    assert r.headers["X-Array-Shape"] == "2,2"
    assert len(r.content) == 2 * 2 * 4  # the slice's bytes, nothing more
    np.testing.assert_array_equal(
        np.frombuffer(r.content, dtype="float32").reshape(2, 2), frames[3:5, 7:9]
    )


def test_tiff_sequence_is_one_array_and_a_single_tiff_another(client, tree):
    c, _ = client
    _, values = tree
    det = c["files"]["images"]["det"]
    assert det.shape == (4, 6, 7)
    stack = np.stack([values[f"image{i}"] for i in range(4)])
    np.testing.assert_array_equal(det[:], stack)
    np.testing.assert_array_equal(det[1:3, 2], stack[1:3, 2])
    np.testing.assert_array_equal(det[-1], stack[-1])
    np.testing.assert_array_equal(c["files"]["images"]["flat.tif"][:], values["flat"])


def test_tables_read_back_equal(client):
    c, _ = client
    expected = pd.DataFrame({"motor": [1.0, 2.0, 3.0], "det": [10, 20, 30]})
    for name in ("scan.csv", "scan.tsv", "scan.parquet"):
        df = c["files"][name].read()
        pd.testing.assert_frame_equal(
            df[["motor", "det"]].reset_index(drop=True), expected, check_dtype=False
        )
    np.testing.assert_array_equal(c["files"]["scan.csv"]["det"][:], [10, 20, 30])


def test_xdi_headers_are_metadata_and_columns_named(client):
    c, _ = client
    xdi = c["files"]["cu.xdi"]
    assert xdi.metadata["Element"] == {"symbol": "Cu", "edge": "K"}
    assert xdi.metadata["Sample"]["name"] == "copper foil"
    assert "room temperature" in xdi.metadata["comments"]
    df = xdi.read()
    assert list(df.columns)[-3:] == ["energy", "i0", "itrans"]
    np.testing.assert_array_equal(df["energy"].to_numpy(), [8900.0, 8901.0, 8902.0])


def test_other_files_are_bytes_and_unreadable_files_say_why(client):
    c, url = client
    notes = c["files"]["notes.txt"]
    assert notes.metadata["size"] == len(b"beam time notes\n")
    assert notes[:9].tobytes() == b"beam time"
    r = httpx.get(f"{url}/api/v1/array/full/files/notes.txt", params={"format": "octet-stream"})
    assert r.content == b"beam time notes\n"
    broken = c["files"]["broken.h5"]
    assert "hdf5 reader" in broken.metadata["error"]
    assert "Unreadable" in broken.specs


def test_search_by_attribute_and_full_text(client):
    c, _ = client
    nexus = c["files"]["scans"]["copper.nxs"]
    assert list(nexus.search(Key("NX_class") == "NXentry")) == ["entry"]
    assert list(nexus.search(Key("NX_class") == "NXdata")) == ["entry/data"]  # the subtree
    entry = nexus["entry"]
    assert sorted(entry.search(Key("NX_class") == "NXinstrument")) == ["instrument"]
    files = c["files"]
    assert sorted(files.search(FullText("foil"))) == ["cu.xdi", "scans/copper.nxs/entry"]
    assert list(files.search(Key("Element.symbol") == "Cu")) == ["cu.xdi"]
    assert sorted(files.search(FullText("motor"))) == ["scan.csv", "scan.parquet", "scan.tsv"]


def test_mounted_beside_runs(client, catalog):
    catalog.create_catalog("bmm/raw")
    c, url = client
    assert {"bmm", "files"} <= set(c)
    assert httpx.get(f"{url}/api/v1/metadata/files/nothing-here").status_code == 404


def test_a_mount_cannot_hide_a_catalog_of_runs(catalog, tree):
    from bluebroker.catalog import CatalogError
    from bluebroker.directory import DirectorySource

    catalog.create_catalog("bmm/raw")
    src = DirectorySource(catalog, tree[0], "bmm")
    for name in ("bmm", "bmm/raw", "a b", ".."):
        with pytest.raises(CatalogError, match="cannot mount"):
            catalog.mount(name, src)

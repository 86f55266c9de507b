"""A served folder read with Tiled's own Python client (0.2.x): HDF5 groups and arrays,
images, tables, searches of a subtree, files no reader knows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

tiled_client = pytest.importorskip("tiled.client")


@pytest.fixture
def tiled(source, catalog):
    from bluebroker.server.run import background_server

    with background_server(catalog) as url:
        yield tiled_client.from_uri(url)


def test_hdf5_groups_and_arrays(tiled, tree):
    from tiled.client.array import ArrayClient
    from tiled.client.container import Container

    _, values = tree
    files = tiled["files"]
    assert "scans" in list(files)
    nexus = files["scans"]["copper.nxs"]
    assert isinstance(nexus, Container) and list(nexus) == ["entry"]
    entry = nexus["entry"]
    assert entry.metadata["NX_class"] == "NXentry"
    assert entry.metadata["title"] == "copper foil edge scan"
    counts = files["scans/copper.nxs/entry/data/counts"]
    assert isinstance(counts, ArrayClient)
    assert counts.shape == (200, 300) and counts.dtype == np.float32
    assert counts.metadata["units"] == "counts"
    frames = values["frames"]
    np.testing.assert_array_equal(counts.read(), frames)
    np.testing.assert_array_equal(counts[10:20, ::4], frames[10:20, ::4])
    np.testing.assert_array_equal(counts[-1], frames[-1])
    np.testing.assert_array_equal(counts.read(slice=np.s_[5:7, 1]), frames[5:7, 1])


def test_images_tables_and_other_files(tiled, tree):
    _, values = tree
    files = tiled["files"]
    det = files["images"]["det"]
    assert det.shape == (4, 6, 7)
    np.testing.assert_array_equal(det[1:3], np.stack([values["image1"], values["image2"]]))
    expected = pd.DataFrame({"motor": [1.0, 2.0, 3.0], "det": [10, 20, 30]})
    for name in ("scan.csv", "scan.parquet"):
        df = files[name].read()
        pd.testing.assert_frame_equal(
            df[["motor", "det"]].reset_index(drop=True), expected, check_dtype=False
        )
    assert files["cu.xdi"].metadata["Element"] == {"symbol": "Cu", "edge": "K"}
    assert files["notes.txt"][:9].tobytes() == b"beam time"
    assert "hdf5 reader" in files["broken.h5"].metadata["error"]


def test_search_of_a_subtree(tiled):
    from tiled.queries import FullText, Key

    files = tiled["files"]
    assert list(files["scans"]["copper.nxs"].search(Key("NX_class") == "NXentry")) == ["entry"]
    found = files.search(Key("NX_class") == "NXdata")
    assert list(found) == ["scans/copper.nxs/entry/data"]
    (data,) = found.values()
    assert sorted(data) == ["counts", "label"]
    assert sorted(files.search(FullText("foil"))) == ["cu.xdi", "scans/copper.nxs/entry"]
    assert list(files["images"].search(FullText("foil"))) == []

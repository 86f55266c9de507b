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


STRINGS = {  # dataset: (what h5py is given, the bytes Tiled's client reads, their dtype)
    "names": (["alpha", "beta", "", "gamma"], [b"alpha", b"beta", b"", b"gamma"], "S5"),
    "utf8": (["température", "µm", "x"], ["température".encode(), "µm".encode(), b"x"], "S12"),
    "grid": ([["a", "bb"], ["ccc", "d"]], [[b"a", b"bb"], [b"ccc", b"d"]], "S3"),
}


def _string_file(path) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        for name, (given, _, _) in STRINGS.items():
            f.create_dataset(name, data=np.array(given, dtype=object), dtype=h5py.string_dtype())
        f.create_dataset("ascii", data=[b"ab", b"cde"], dtype=h5py.string_dtype("ascii"))
        f.create_dataset("fixed", data=np.array([b"ab", b"cde"], dtype="S6"))


@pytest.fixture
def strings(source, catalog, tree):
    """A file of string datasets added to the served tree, served; yields the server's URL."""
    from bluebroker.server.run import background_server

    root, _ = tree
    _string_file(root / "strings.h5")
    source.register()
    with background_server(catalog) as url:
        yield url


def test_string_datasets_are_fixed_length_bytes_for_tiled(strings):
    """Tiled's client refuses object arrays; ``tiled serve directory`` gives it S<longest>."""
    from bluebroker.client import from_uri

    tiled = tiled_client.from_uri(strings)["files"]["strings.h5"]
    expected = {name: np.array(b, dtype=dt) for name, (_, b, dt) in STRINGS.items()}
    expected["ascii"] = np.array([b"ab", b"cde"], dtype="S3")
    expected["fixed"] = np.array([b"ab", b"cde"], dtype="S6")  # its own length, as stored
    for name, values in expected.items():
        node = tiled[name]
        assert node.dtype == values.dtype, name
        got = node.read()
        assert got.dtype == values.dtype and got.tolist() == values.tolist(), name
        assert node[1:].tolist() == values[1:].tolist(), name
        assert node[-1].tolist() == values[-1].tolist(), name
    assert tiled["grid"][:, 1].tolist() == [b"bb", b"d"]
    # our own client still reads text
    ours = from_uri(strings)["files"]["strings.h5"]
    assert ours["utf8"].read().tolist() == ["température", "µm", "x"]
    assert ours["grid"][1].tolist() == ["ccc", "d"]


def test_string_datasets_as_tiled_serves_them(strings, tmp_path):
    """The same file under a real ``tiled serve directory`` (the peer environment): the
    same structure and the same values through Tiled's client."""
    import os
    import socket
    import subprocess
    import time

    from tests.tiled_compat.test_databroker2 import PEER

    if not PEER.exists():
        pytest.skip(f"no peer environment at {PEER}: make it with python benchmarks/peer_env.py")
    folder = tmp_path / "peer"
    folder.mkdir()
    _string_file(folder / "strings.h5")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [str(PEER.with_name("tiled")), "serve", "directory", str(folder), "--port", str(port)]
    cmd += ["--api-key", "peerkey123", "--keep-ext"]
    with open(tmp_path / "tiled.log", "w") as log:
        peer = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    try:
        deadline = time.monotonic() + 120
        while "Indexing complete" not in (tmp_path / "tiled.log").read_text():
            assert peer.poll() is None and time.monotonic() < deadline, (
                tmp_path / "tiled.log"
            ).read_text()[-2000:]
            time.sleep(0.1)  # polling the peer's own readiness line
        theirs = tiled_client.from_uri(f"http://127.0.0.1:{port}", api_key="peerkey123")
        theirs = theirs["strings.h5"]
        ours = tiled_client.from_uri(strings)["files"]["strings.h5"]
        for name in [*STRINGS, "ascii", "fixed"]:
            t, o = theirs[name], ours[name]
            assert o.structure().data_type == t.structure().data_type, name
            assert o.shape == t.shape, name
            a, b = o.read(), t.read()
            assert a.dtype == b.dtype and a.tolist() == b.tolist(), name
            assert o[1:].tolist() == t[1:].tolist(), name
    finally:
        peer.terminate()
        peer.wait(30)

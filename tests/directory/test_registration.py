"""Registration: incremental across restarts, live with --watch, pluggable, and hostile
input (links out of the tree, '..', corrupt files) refused or listed, never served."""

from __future__ import annotations

import os

import httpx
import numpy as np
import pandas as pd
import pytest

from bluebroker.directory import DirectorySource, Entry, Reader
from bluebroker.directory.readers_tables import CSVReader


class CountingCSV(CSVReader):
    """The CSV reader, counting the files it describes (a reader plugged in by a facility
    would be passed the same way, or found through its entry point)."""

    def __init__(self) -> None:
        self.described: list[str] = []

    def describe(self, files: list[str]) -> list[Entry]:
        self.described.extend(files)
        return super().describe(files)


def test_restart_reads_only_changed_files(catalog, tree):
    root, _ = tree
    first = DirectorySource(catalog, root, "files")
    report = first.register()
    assert report.unreadable == ["broken.h5"]
    assert len(report.added) == 11 and not report.changed and not report.removed

    counting = CountingCSV()
    again = DirectorySource(catalog, root, "files", readers={"csv": counting})
    report = again.register()
    assert report.added == [] and report.changed == [] and report.unchanged == 11
    assert counting.described == []  # nothing opened: sizes and mtimes matched

    pd.DataFrame({"motor": [5.0], "det": [50]}).to_csv(root / "scan.csv", index=False)
    os.utime(root / "scan.csv", ns=(1, 2_000_000_000_000_000_000))  # surely a new mtime
    (root / "notes.txt").unlink()
    report = again.register()
    assert report.changed == ["scan.csv"] and report.removed == ["notes.txt"]
    assert counting.described == [str((root / "scan.csv").resolve())]
    table = again.node(("scan.csv",))
    assert len(table) == 1
    assert table.read()["det"].tolist() == [50]


def test_a_changed_hdf5_file_is_indexed_anew(catalog, tree):
    """Every row of a file (the file, its groups, its datasets) and its words are replaced."""
    import h5py

    from bluebroker.queries import FullText, Key

    root, _ = tree
    src = DirectorySource(catalog, root)
    src.register()
    path = root / "scans" / "copper.nxs"
    with h5py.File(path, "w") as f:
        f.attrs["NX_class"] = "NXroot"
        entry = f.create_group("entry2")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["title"] = "zinc oxide"
        entry.create_dataset("counts", data=np.arange(6))
    os.utime(path, ns=(1, 2_000_000_000_000_000_000))
    report = src.register()
    assert report.changed == ["scans/copper.nxs"]
    nexus = src.node(("scans", "copper.nxs"))
    assert list(nexus) == ["entry2"]
    assert list(nexus.search(Key("NX_class") == "NXentry")) == ["entry2"]
    assert list(nexus.search(FullText("zinc"))) == ["entry2"]
    assert list(nexus.search(FullText("copper"))) == []
    np.testing.assert_array_equal(
        src.node(("scans", "copper.nxs", "entry2", "counts")).read(), np.arange(6)
    )
    with pytest.raises(KeyError):
        src.node(("scans", "copper.nxs", "entry", "data", "counts"))


def test_watch_sees_new_changed_and_removed_files_and_sends_notices(client, source):
    from bluebroker.directory.live import Watcher

    c, _ = client
    root = source.root
    watcher = Watcher(source, debounce_ms=50).start()
    try:
        assert watcher.ready.wait(30)
        updates = c["files"].updates(start=1, timeout=60)
        pd.DataFrame({"e": [1.0, 2.0]}).to_csv(os.path.join(root, "new.csv"), index=False)
        seen = next(u for u in updates if u.get("path") == "new.csv")
        assert seen.type == "file-added"
        assert c["files"]["new.csv"].read()["e"].tolist() == [1.0, 2.0]

        pd.DataFrame({"e": [3.0, 4.0, 5.0]}).to_csv(os.path.join(root, "new.csv"), index=False)
        seen = next(u for u in updates if u.get("path") == "new.csv")
        assert seen.type == "file-changed"
        assert c["files"]["new.csv"].read()["e"].tolist() == [3.0, 4.0, 5.0]

        os.remove(os.path.join(root, "new.csv"))
        seen = next(u for u in updates if u.get("path") == "new.csv")
        assert seen.type == "file-removed"
        assert "new.csv" not in c["files"]
    finally:
        watcher.stop()


def test_symlinks_out_of_the_tree_are_refused(catalog, tree, tmp_path):
    root, _ = tree
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.csv").write_text("a\n1\n")
    os.symlink(secret, root / "secret.txt")
    os.symlink(outside, root / "elsewhere")
    os.symlink(root / "scan.csv", root / "alias.csv")  # inside: served
    src = DirectorySource(catalog, root, "files")
    src.register()
    catalog.mount("files", src)
    from bluebroker.client import from_uri
    from bluebroker.server.run import background_server

    with background_server(catalog) as url:
        c = from_uri(url)
        assert "escape" not in str(c["files"]["secret.txt"].metadata)
        assert "outside the served directory" in c["files"]["secret.txt"].metadata["error"]
        assert "outside the served directory" in c["files"]["elsewhere"].metadata["error"]
        assert list(c["files"]["elsewhere"]) == []
        assert c["files"]["alias.csv"].read()["det"].tolist() == [10, 20, 30]
        for path in (
            "files/secret.txt",
            "files/elsewhere/data.csv",
            "files/../../etc/passwd",
            "files/%2e%2e/secret.txt",
            "files/scans/..%2f..%2fsecret.txt",
        ):
            for route in ("metadata", "array/full", "table/full", "search"):
                r = httpx.get(f"{url}/api/v1/{route}/{path}")
                assert b"not for the web" not in r.content
                if (route, path) not in (
                    ("metadata", "files/secret.txt"),  # listed, refused
                    ("search", "files/secret.txt"),
                ):
                    assert r.status_code in (400, 403, 404), (route, path, r.status_code)
    # A file swapped for a link after registration is refused when read, not followed.
    os.remove(root / "notes.txt")
    os.symlink(secret, root / "notes.txt")
    with pytest.raises(PermissionError, match="outside the served directory"):
        src.node(("notes.txt",)).read()


def test_corrupt_and_strange_files_are_listed_with_a_reason(catalog, tree):
    root, _ = tree
    (root / "empty.h5").write_bytes(b"")
    (root / "bad.xdi").write_text("this is not XDI\n1 2 3\n")
    (root / "bad.parquet").write_bytes(b"PAR1 garbage")
    (root / "ragged_000.tif").write_bytes(b"II*\x00 garbage")
    src = DirectorySource(catalog, root, "files")
    report = src.register()
    assert set(report.unreadable) >= {"broken.h5", "empty.h5", "bad.xdi", "bad.parquet"}
    for name in ("empty.h5", "bad.xdi", "bad.parquet", "ragged_000.tif"):
        node = src.node((name,))
        assert node.metadata["error"]
    assert "not an XDI file" in src.node(("bad.xdi",)).metadata["error"]


def test_a_sequence_whose_files_differ_is_served_file_by_file(catalog, tmp_path):
    import tifffile

    root = tmp_path / "seq"
    root.mkdir()
    tifffile.imwrite(root / "frame_01.tif", np.zeros((4, 4), "uint8"))
    tifffile.imwrite(root / "frame_02.tif", np.ones((5, 5), "uint8"))
    src = DirectorySource(catalog, root)
    src.register()
    root_node = src.node(())
    assert sorted(root_node) == ["frame_01.tif", "frame_02.tif"]
    assert src.node(("frame_02.tif",)).read().shape == (5, 5)
    assert src.register().unchanged == 1  # still one unit: not read again


def test_zarr_store_is_a_container_of_arrays(catalog, tmp_path):
    zarr = pytest.importorskip("zarr")
    root = tmp_path / "z"
    root.mkdir()
    group = zarr.open_group(str(root / "run.zarr"), mode="w")
    group.attrs["sample"] = "LaB6"
    values = np.arange(60, dtype="int16").reshape(6, 10)
    group.create_array("image", shape=values.shape, dtype=values.dtype, chunks=(2, 5))[:] = values
    src = DirectorySource(catalog, root)
    src.register()
    store = src.node(("run.zarr",))
    assert store.metadata == {"sample": "LaB6"}
    np.testing.assert_array_equal(
        src.node(("run.zarr", "image")).read((slice(1, 4), -1)), values[1:4, -1]
    )


class Lines(Reader):
    """A facility's own format: a text file, one array element per line."""

    name = "lines"
    suffixes = (".lines",)

    def describe(self, files: list[str]) -> list[Entry]:
        with open(files[0]) as f:
            n = sum(1 for _ in f)
        return [Entry("array", "lines", {"shape": [n], "dtype": "<f8"}, {"format": "lines"})]

    def read_array(self, files, inner, index):
        return np.loadtxt(files[0], ndmin=1)[index]


def test_a_plugged_in_reader_serves_its_format(catalog, tmp_path):
    root = tmp_path / "own"
    root.mkdir()
    (root / "a.lines").write_text("1.5\n2.5\n3.5\n")
    src = DirectorySource(catalog, root, readers={"lines": Lines()})
    src.register()
    node = src.node(("a.lines",))
    assert node.metadata == {"format": "lines"}
    np.testing.assert_array_equal(node.read((slice(1, None),)), [2.5, 3.5])


def test_a_zarr_store_holding_a_link_out_is_refused(catalog, tmp_path):
    zarr = pytest.importorskip("zarr")
    root = tmp_path / "z"
    root.mkdir()
    group = zarr.open_group(str(root / "run.zarr"), mode="w")
    group.create_array("image", shape=(4,), dtype="int8", chunks=(4,))[:] = 1
    secret = tmp_path / "secret"
    secret.write_bytes(bytes(4))
    chunk = next(
        p for p in (root / "run.zarr" / "image").rglob("*") if p.is_file() and p.name != "zarr.json"
    )
    chunk.unlink()
    os.symlink(secret, chunk)
    src = DirectorySource(catalog, root)
    src.register()
    node = src.node(("run.zarr",))
    assert "link out of the served directory" in node.metadata["error"]
    assert list(node) == []

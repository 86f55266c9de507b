"""A folder of every supported kind, made with the real libraries, served for real."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

XDI_TEXT = """# XDI/1.0 GSE/1.0
# Column.1: energy eV
# Column.2: i0
# Column.3: itrans
# Element.symbol: Cu
# Element.edge: K
# Mono.d_spacing: 3.13555
# Sample.name: copper foil
# ///
# room temperature, 10 um foil
#----
# energy i0 itrans
8900.0 1000.0 800.0
8901.0 1001.0 790.0
8902.0 1002.0 700.0
"""


def make_tree(root: Path) -> dict[str, np.ndarray]:
    """Files of every kind under ``root``; returns the values each should read back as."""
    import h5py
    import pandas as pd
    import tifffile

    values: dict[str, np.ndarray] = {}
    (root / "scans").mkdir(parents=True)
    (root / "images").mkdir()
    frames = np.arange(200 * 300, dtype="float32").reshape(200, 300)
    with h5py.File(root / "scans" / "copper.nxs", "w") as f:
        f.attrs["NX_class"] = "NXroot"
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["title"] = "copper foil edge scan"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        ds = data.create_dataset("counts", data=frames, chunks=(20, 30))
        ds.attrs["units"] = "counts"
        data.create_dataset("label", data="edge")
        instrument = entry.create_group("instrument")
        instrument.attrs["NX_class"] = "NXinstrument"
    values["frames"] = frames
    for i in range(4):
        image = np.full((6, 7), i, dtype="uint16") + np.arange(42, dtype="uint16").reshape(6, 7)
        tifffile.imwrite(root / "images" / f"det_{i:04d}.tif", image)
        values[f"image{i}"] = image
    single = np.arange(12, dtype="int32").reshape(3, 4)
    tifffile.imwrite(root / "images" / "flat.tif", single)
    values["flat"] = single
    table = pd.DataFrame({"motor": [1.0, 2.0, 3.0], "det": [10, 20, 30]})
    table.to_csv(root / "scan.csv", index=False)
    table.to_csv(root / "scan.tsv", sep="\t", index=False)
    table.to_parquet(root / "scan.parquet")
    (root / "cu.xdi").write_text(XDI_TEXT)
    (root / "notes.txt").write_bytes(b"beam time notes\n")
    (root / "broken.h5").write_bytes(b"\x89HDF\r\n\x1a\n this is not really HDF5")
    return values


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path / "lake"
    values = make_tree(root)
    return root, values


@pytest.fixture
def source(catalog, tree):
    """The tree indexed in the test's catalog (both backends) and mounted at /files."""
    from bluebroker.directory import DirectorySource

    root, _ = tree
    src = DirectorySource(catalog, root, "files")
    src.register()
    catalog.mount("files", src)
    return src


@pytest.fixture
def client(source, catalog):
    """The Python client of a real server serving the catalog with the tree mounted."""
    from bluebroker.client import from_uri
    from bluebroker.server.run import background_server

    with background_server(catalog) as url:
        yield from_uri(url), url


def outside_file(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web")
    os.chmod(secret, 0o644)
    return secret

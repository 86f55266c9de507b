"""A big-endian dataset (a served file, a run's detector file) goes out in the server's
native byte order: the structure a client decodes raw bytes by must say that order, or every
value arrives byte-swapped (Tiled's client and the web page decode octet-streams by it)."""

from __future__ import annotations

import h5py
import httpx
import numpy as np

from bluebroker.directory import DirectorySource
from bluebroker.server.run import background_server
from tests.conftest import TEST_KEY

ORDER = {"little": "<", "big": ">", "not_applicable": "|"}
AUTH = {"Authorization": f"Apikey {TEST_KEY}"}


def _fetch(url: str, path: str) -> tuple[np.dtype, httpx.Response]:
    """The dtype an independent client derives from the node's structure, and the raw bytes."""
    meta = httpx.get(f"{url}/api/v1/metadata/{path}", headers=AUTH).json()
    t = meta["data"]["attributes"]["structure"]["data_type"]
    dtype = np.dtype(f"{ORDER[t['endianness']]}{t['kind']}{t['itemsize']}")
    raw = httpx.get(
        f"{url}/api/v1/array/full/{path}",
        params={"format": "application/octet-stream"},
        headers=AUTH,
    )
    assert raw.status_code == 200, raw.text
    return dtype, raw


def test_raw_bytes_decode_by_the_structure_for_either_byte_order(catalog, tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    values = np.arange(12, dtype=">u2").reshape(3, 4) * 257 + 1  # byte-swapping shows
    with h5py.File(root / "frames.h5", "w") as f:
        f["big"] = values
        f["little"] = values.astype("<f4")
    src = DirectorySource(catalog, root, "files")
    src.register()
    catalog.mount("files", src)
    with background_server(catalog) as url:
        for name in ("big", "little"):
            dtype, raw = _fetch(url, f"files/frames.h5/{name}")
            assert np.dtype(raw.headers["x-array-dtype"]) == dtype
            got = np.frombuffer(raw.content, dtype).reshape(3, 4)
            np.testing.assert_array_equal(got, values)


def test_a_runs_big_endian_detector_frames_decode_by_the_structure(catalog, RE, tmp_path):
    from bluesky import plans as bp

    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.simulated import HDF5Camera

    cam = HDF5Camera("typed", tmp_path, shape=(6, 5), dtype=">u2")
    token = RE.subscribe(CatalogWriter(catalog, "bmm/raw"))
    try:
        (uid,) = RE(bp.count([cam], num=2))
    finally:
        RE.unsubscribe(token)
    with background_server(catalog) as url:
        dtype, raw = _fetch(url, f"bmm/raw/{uid}/primary/data/typed")
        got = np.frombuffer(raw.content, dtype).reshape(2, 6, 5)
        np.testing.assert_array_equal(got, np.stack(cam.frames))


def test_a_bool_detector_keeps_its_datum_ids(catalog, RE, tmp_path):
    """An external field's dtype_numpy is the file's, not its event values' (datum ids): a
    bool camera's ids were cast to True and its frames could not be found."""
    from bluesky import plans as bp

    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.simulated import HDF5Camera

    cam = HDF5Camera("mask", tmp_path, shape=(3, 4), dtype=bool)
    (uid,) = RE(bp.count([cam], num=2), CatalogWriter(catalog, "bmm/raw"))
    got = catalog["bmm/raw"][uid]["primary"]["data"]["mask"].read()
    np.testing.assert_array_equal(got, np.stack(cam.frames))

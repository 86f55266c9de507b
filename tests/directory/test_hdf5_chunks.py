"""Slices of large uncompressed chunked HDF5 datasets read chunk by chunk (hdf5_chunks.py)
equal h5py's own read, for every shape of selection, fill values and byte orders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bluebroker.directory.hdf5_chunks import read_by_chunks
from bluebroker.directory.readers import normalize_index
from bluebroker.directory.readers_hdf5 import HDF5Reader

h5py = pytest.importorskip("h5py")

SELECTIONS = [
    np.s_[100:300, 100:300],  # chunk-aligned, four whole chunks
    np.s_[37:291, 5:299],  # unaligned, partial chunks on every side
    np.s_[250:300, :],  # the edge chunks (300 is not a multiple of 128)
    np.s_[7, 10:200],  # an integer drops a dimension
    np.s_[:, 3],
    np.s_[5, 9],
    np.s_[::-1, 20:40],  # a reversal, applied after the read
    (Ellipsis, slice(0, 1)),
]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    rng = np.random.default_rng(1)
    out = {}
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_dataset("f4", data=rng.random((300, 300), dtype="float32"), chunks=(128, 128))
        f.create_dataset("be", data=rng.integers(-9, 9, (300, 300)).astype(">i8"), chunks=(128, 64))
        f.create_dataset("c8", data=(rng.random((300, 300)) + 1j).astype("c8"), chunks=(128, 128))
        sparse = f.create_dataset("sparse", (300, 300), "f8", chunks=(128, 128), fillvalue=-1.5)
        sparse[0:10, 0:10] = 3.0  # only one chunk written
        f.create_dataset(
            "zipped", data=rng.random((300, 300)), chunks=(128, 128), compression="gzip"
        )
        f.create_dataset("small", data=rng.random((300, 300)), chunks=(16, 16))
    out["plain"] = str(tmp_path / "plain.h5")
    return out


@pytest.mark.parametrize("name", ["f4", "be", "c8", "sparse", "zipped", "small"])
@pytest.mark.parametrize("index", SELECTIONS, ids=str)
def test_reader_equals_h5py(files: dict[str, str], name: str, index: tuple) -> None:
    got = HDF5Reader().read_array(
        [files["plain"]], name, index if isinstance(index, tuple) else (index,)
    )
    with h5py.File(files["plain"], "r") as f:
        expected = np.asarray(f[name][()][index])
    assert got.dtype.newbyteorder("=") == expected.dtype.newbyteorder("=")
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", ["f4", "be", "c8", "sparse"])
def test_plain_chunks_take_the_chunk_path(files: dict[str, str], name: str) -> None:
    with h5py.File(files["plain"], "r") as f:
        ds = f[name]
        read, _ = normalize_index(np.s_[37:291, 5:299], ds.shape)
        got = read_by_chunks(ds, read)
        assert got is not None
        np.testing.assert_array_equal(got, ds[37:291, 5:299])


def test_other_data_go_to_h5py(files: dict[str, str]) -> None:
    """Compressed or small chunks, strided reads and reads far smaller than their chunks
    are h5py's (None here)."""
    with h5py.File(files["plain"], "r") as f:
        for name, index in [
            ("zipped", np.s_[0:200, 0:200]),
            ("small", np.s_[0:200, 0:200]),
            ("f4", np.s_[0:200:2, 0:200]),
            ("f4", np.s_[0:2, 0:2]),
        ]:
            read, _ = normalize_index(index, f[name].shape)
            assert read_by_chunks(f[name], read) is None, name


def test_threads_reading_at_once_get_their_own_slices(files: dict[str, str]) -> None:
    """Each worker thread keeps its own chunk buffer: reads at the same time do not mix."""
    from concurrent.futures import ThreadPoolExecutor

    with h5py.File(files["plain"], "r") as f:
        whole = f["f4"][()]
    starts = [(r, c) for r in range(0, 150, 7) for c in range(0, 150, 11)]

    def read(start: tuple[int, int]) -> bool:
        r, c = start
        index = (slice(r, r + 150), slice(c, c + 150))
        got = HDF5Reader().read_array([files["plain"]], "f4", index)
        return np.array_equal(got, whole[index])

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(read, starts))


def test_chunks_over_8_mib_go_to_h5py(tmp_path: Path) -> None:
    path = tmp_path / "huge.h5"
    data = np.arange(1100 * 1000, dtype="f8").reshape(1100, 1000)
    with h5py.File(path, "w") as f:
        f.create_dataset("d", data=data, chunks=(1100, 1000))  # 8.8 MB in one chunk
    with h5py.File(path, "r") as f:
        read, _ = normalize_index((slice(None), slice(None)), f["d"].shape)
        assert read_by_chunks(f["d"], read) is None
    got = HDF5Reader().read_array([str(path)], "d", (slice(5, 1000), slice(2, 900)))
    np.testing.assert_array_equal(got, data[5:1000, 2:900])

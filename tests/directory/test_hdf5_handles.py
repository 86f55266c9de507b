"""HDF5 files kept open between reads (directory/hdf5_handles.py): a changed file is read
as it is now, a file still being written is never kept, links are still refused, the
number kept is bounded, and the catalog can open a kept file with its own SWMR flag."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from bluebroker.directory.hdf5_handles import OPEN_FILES, SETTLE_S, OpenFiles
from bluebroker.directory.readers_hdf5 import HDF5Reader, RefusedLink, check_links
from bluebroker.hdf5_open import open_hdf5, retry_on_conflict

h5py = pytest.importorskip("h5py")
ALL = (slice(None),)


def write(path: Path, values: np.ndarray, age: float = 60.0) -> str:
    """Write ``values`` as /data, dated ``age`` seconds ago (settled unless age is 0)."""
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=values)
    then = time.time() - age
    os.utime(path, (then, then))
    return str(path)


def read(files: OpenFiles, path: str) -> np.ndarray:
    with files.dataset(path, "data", check_links) as ds:
        return ds[()]


def test_a_settled_file_stays_open_and_its_dataset_is_reused(tmp_path: Path) -> None:
    path = write(tmp_path / "a.h5", np.arange(5.0))
    files = OpenFiles()
    with files.dataset(path, "data", check_links) as first:
        pass
    with files.dataset(path, "data", check_links) as second:
        np.testing.assert_array_equal(second[()], np.arange(5.0))
    assert len(files) == 1
    assert second is first  # opened once, links checked once
    assert first.id.valid  # not closed between the two reads


def test_a_file_rewritten_in_place_is_read_as_it_is_now(tmp_path: Path) -> None:
    path = write(tmp_path / "a.h5", np.zeros(100))
    files = OpenFiles()
    np.testing.assert_array_equal(read(files, path), np.zeros(100))
    # Rewritten in place (same inode, same size) as another process would, while kept open.
    shutil.copyfile(write(tmp_path / "b.h5", np.ones(100)), path)
    os.utime(path, (time.time() - 30, time.time() - 30))
    np.testing.assert_array_equal(read(files, path), np.ones(100))
    assert len(files) == 1


def test_a_file_replaced_by_another_is_read_anew(tmp_path: Path) -> None:
    path = write(tmp_path / "a.h5", np.zeros(3))
    files = OpenFiles()
    read(files, path)
    os.replace(write(tmp_path / "b.h5", np.full(7, 2.0)), path)
    np.testing.assert_array_equal(read(files, path), np.full(7, 2.0))


def test_a_file_being_written_is_not_kept_open(tmp_path: Path) -> None:
    path = write(tmp_path / "a.h5", np.arange(4.0), age=0.0)
    assert SETTLE_S > 1
    files = OpenFiles()
    with files.dataset(path, "data", check_links) as ds:
        np.testing.assert_array_equal(ds[()], np.arange(4.0))
    assert len(files) == 0
    assert not ds.id.valid  # closed when the read was done


def test_at_most_size_files_are_kept_and_the_oldest_goes_first(tmp_path: Path) -> None:
    files = OpenFiles(size=3)
    paths = [write(tmp_path / f"{i}.h5", np.full(2, float(i))) for i in range(5)]
    for i, path in enumerate(paths):
        np.testing.assert_array_equal(read(files, path), np.full(2, float(i)))
    assert len(files) == 3
    with files.dataset(paths[0], "data", check_links) as ds:  # evicted, opened again
        assert ds[0] == 0.0


def test_a_file_in_use_is_not_closed_under_its_reader(tmp_path: Path) -> None:
    files = OpenFiles(size=1)
    a = write(tmp_path / "a.h5", np.arange(3.0))
    b = write(tmp_path / "b.h5", np.arange(4.0))
    with files.dataset(a, "data", check_links) as held:
        read(files, b)  # evicts a while it is being read
        np.testing.assert_array_equal(held[()], np.arange(3.0))
    assert not held.id.valid  # closed by its last user


def test_a_link_out_of_the_folder_is_refused_every_time(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    write(outside / "secret.h5", np.arange(3.0))
    inside = tmp_path / "served"
    inside.mkdir()
    path = inside / "link.h5"
    with h5py.File(path, "w") as f:
        f["data"] = h5py.ExternalLink(str(outside / "secret.h5"), "/data")
    os.utime(path, (time.time() - 60, time.time() - 60))
    reader = HDF5Reader()
    for _ in range(2):
        with pytest.raises(RefusedLink):
            reader.read_array([str(path)], "data", ALL)


def test_the_catalog_opens_a_kept_file_with_its_own_swmr_flag(tmp_path: Path) -> None:
    path = write(tmp_path / "a.h5", np.arange(6.0))
    files = OpenFiles()
    read(files, path)  # kept open without SWMR
    with open_hdf5(path, swmr=True) as f:  # a stream_resource saying swmr=True
        np.testing.assert_array_equal(f["data"][()], np.arange(6.0))
    np.testing.assert_array_equal(read(files, path), np.arange(6.0))


def test_a_handler_opening_with_default_locking_gets_the_file(tmp_path: Path) -> None:
    """Third-party handlers open with HDF5's default file locking, which HDF5 refuses while
    the file is open here without: the kept files are closed and the open tried again."""
    path = write(tmp_path / "a.h5", np.arange(6.0))
    read(OPEN_FILES, path)
    assert path in OPEN_FILES._open
    with retry_on_conflict(lambda: h5py.File(path, "r", locking=True)) as f:
        assert f["data"].shape == (6,)
    assert path not in OPEN_FILES._open

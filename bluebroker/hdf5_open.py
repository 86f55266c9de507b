"""HDF5 files opened for reading the same way everywhere in one process.

Why: HDF5 shares one open file between every open of the same file in a process, and
refuses a second open whose file-locking or SWMR flags differ from the first ("file
locking flag values don't match", "SWMR read access flag not the same"). A served folder
keeps recently read files open (directory/hdf5_handles.py), and a run's external data may
live in that folder, read by the catalog with its resource's SWMR flag: each would make
the other fail. So every read-only open here uses ``locking=False`` (a detector writing a
file must neither block a reader nor be blocked by one), and an open refused only for its
SWMR flag joins the file as it is already open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
SWMR_CLASH = "SWMR read access flag"  # HDF5's words when an open's flags differ from
LOCKING_CLASH = "file locking flag"  # those of the same file already open in this process


def _clash(err: OSError) -> bool:
    return SWMR_CLASH in str(err) or LOCKING_CLASH in str(err)


def open_hdf5(path: str, swmr: bool = False) -> Any:
    """``h5py.File(path, "r")`` without file locking, in SWMR mode if asked (or if the
    file is already open in SWMR mode in this process)."""
    import h5py

    try:
        return h5py.File(path, "r", locking=False, swmr=swmr)
    except OSError as err:
        if SWMR_CLASH in str(err):
            return h5py.File(path, "r", locking=False, swmr=not swmr)
        if LOCKING_CLASH in str(err):  # opened by other code with HDF5's default locking
            return h5py.File(path, "r", swmr=swmr)
        raise


# Who keeps HDF5 files open between requests (directory/hdf5_handles.py), to be asked to
# close the idle ones when other code's open of a file collides with theirs.
_keepers: list[Callable[[], None]] = []


def keeps_files_open(close_idle: Callable[[], None]) -> None:
    """Register ``close_idle``, called by :func:`retry_on_conflict`."""
    _keepers.append(close_idle)


def retry_on_conflict(open_it: Callable[[], T]) -> T:
    """``open_it()``; if HDF5 refused it only because this process keeps the file open
    with other flags (third-party handlers open with HDF5's default locking), the kept
    files are closed and it is tried once more."""
    try:
        return open_it()
    except OSError as err:
        if not _clash(err):
            raise
        for close_idle in _keepers:
            close_idle()
        return open_it()

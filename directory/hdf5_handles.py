"""HDF5 files kept open between requests, reopened as soon as the file changes on disk.

Why: opening an HDF5 file (superblock, root group, the dataset's header and chunk index)
and checking its links costs about as much as reading a megabyte from it: a third of a
small slice's whole request, and what a viewer scrolling through a detector file pays on
every frame. So the last ``MAX_OPEN`` files read stay open.

What keeps this safe:

- a file modified in the last ``SETTLE_S`` seconds (one a detector may still be writing)
  is opened and closed by each request as before, never kept;
- each use compares the file's identity on disk (device, inode, size, modification and
  change times, one ``stat``) with the one it was opened with; a file rewritten, appended
  to or replaced is opened afresh, so a read never sees an older version of the file than
  it would have by opening it itself;
- a handle in use by a request is never closed under it: one retired (changed, evicted, or
  broken by an error) closes when its last user is done;
- the links a dataset is reached through are checked once per open handle (they cannot
  change without the file changing), by the caller's ``check`` function, and the dataset
  stays open with the file (with its chunk cache: a viewer stepping through frames of one
  chunk reads it once).

HDF5 shares one open file between all opens of the same file in a process, and refuses a
second open with different flags: every read-only open in bluebroker goes through
``bluebroker.hdf5_open.open_hdf5`` (the same flags, and a SWMR open of a file kept open
here joins it).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bluebroker.hdf5_open import keeps_files_open, open_hdf5

MAX_OPEN = 8  # each open file holds HDF5's metadata cache (a few MB at most)
MAX_DATASETS = 4  # kept open per file, each with its chunk cache (1 MiB at most)
SETTLE_S = 5.0  # files changed more recently than this are not kept open


def identity(path: str) -> tuple[int, ...]:
    """What changes when a file is rewritten, appended to or replaced."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def settled(ident: tuple[int, ...]) -> bool:
    return time.time_ns() - ident[3] > SETTLE_S * 1e9  # by its modification time


class _Handle:
    __slots__ = ("datasets", "file", "ident", "retired", "users")

    def __init__(self, file: Any, ident: tuple[int, ...]) -> None:
        self.file = file
        self.ident = ident
        self.users = 0
        self.retired = False
        # Datasets opened and their links found inside the folder: opening one again costs
        # as much as reading a chunk of it, and its chunk cache lives as long as it does.
        self.datasets: dict[str, Any] = {}


class OpenFiles:
    """An LRU of open read-only HDF5 files, keyed by real path (see the module's text)."""

    def __init__(self, size: int = MAX_OPEN) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._open: OrderedDict[str, _Handle] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    @contextmanager
    def dataset(
        self, path: str, inner: str, check: Callable[[Any, Any, str], None]
    ) -> Iterator[Any]:
        """The dataset ``inner`` of the file at real path ``path``, its links checked with
        ``check(file, dataset, path)`` (once per open of the file)."""
        import h5py

        ident = identity(path)
        with self._lock:
            handle = self._open.get(path)
            busy_older = False
            if handle is not None and handle.ident != ident:
                busy_older = handle.users > 0
                self._retire(path, handle)
                handle = None
            if handle is None:
                handle = _Handle(open_hdf5(path), ident)
                # Kept only if settled, and if no request still holds an older version of
                # it open (HDF5 would share that one's view of the file with this open).
                if settled(ident) and not busy_older:
                    self._open[path] = handle
                    while len(self._open) > self.size:
                        old_path, old = next(iter(self._open.items()))
                        self._retire(old_path, old)
                else:
                    handle.retired = True  # closed by this request when it is done
            else:
                self._open.move_to_end(path)
            handle.users += 1
        try:
            ds = handle.datasets.get(inner)
            if ds is None:
                ds = handle.file[inner]
                if not isinstance(ds, h5py.Dataset):
                    raise KeyError(f"{inner!r} is not a dataset")
                check(handle.file, ds, path)
                if len(handle.datasets) < MAX_DATASETS:
                    handle.datasets[inner] = ds
            yield ds
        except (IndexError, TypeError, KeyError, PermissionError):
            raise  # the request's fault, or a refused link: the file itself is fine
        except BaseException:
            with self._lock:  # the file may have changed under the open handle
                if self._open.get(path) is handle:
                    self._retire(path, handle)
            raise
        finally:
            with self._lock:
                handle.users -= 1
                if handle.retired and handle.users == 0:
                    handle.file.close()

    def _retire(self, path: str, handle: _Handle) -> None:
        """Forget ``handle`` (under the lock); closed now if idle, else by its last user."""
        if self._open.get(path) is handle:
            del self._open[path]
        handle.retired = True
        if handle.users == 0:
            handle.file.close()

    def forget(self, path: str) -> None:
        """Close ``path``'s handle (when idle): the file is about to be read anew by
        registration, which must not share a view of an older version of it."""
        with self._lock:
            handle = self._open.get(path)
            if handle is not None:
                self._retire(path, handle)

    def clear(self) -> None:
        with self._lock:
            for path, handle in list(self._open.items()):
                self._retire(path, handle)


OPEN_FILES = OpenFiles()
keeps_files_open(OPEN_FILES.clear)

"""The index rows a served folder remembers by path (directory/source.py) never hide a change
that was announced: a registration's notices drop them at once, whether the file changed,
appeared or went away, and whether the notice came from this process or the change feed."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from bluebroker.catalog import NotFound
from bluebroker.directory import DirectorySource
from bluebroker.directory.live import announce
from bluebroker.directory.register import register


def _write(path, n: int) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(n, dtype="i4"))


@pytest.fixture
def folder(catalog, tmp_path):
    root = tmp_path / "cached"
    root.mkdir()
    _write(root / "a.h5", 3)
    src = DirectorySource(catalog, root, "c")
    src.register()
    return root, src


def _registered(src: DirectorySource) -> None:
    """What the watcher does: register (which does not itself drop remembered rows), then
    announce."""
    announce(src, register(src))


def test_a_changed_file_is_seen_right_after_its_notice(folder):
    root, src = folder
    assert src.node("a.h5/x").shape == (3,)
    assert src.node("a.h5/x").shape == (3,)  # the remembered row
    _write(root / "a.h5", 5)
    _registered(src)
    node = src.node("a.h5/x")
    assert node.shape == (5,)
    assert node.read().tolist() == [0, 1, 2, 3, 4]


def test_files_that_come_and_go_are_seen_right_after_their_notices(folder):
    root, src = folder
    with pytest.raises(NotFound):
        src.node("b.h5/x")  # remembered as missing
    _write(root / "b.h5", 2)
    _registered(src)
    assert src.node("b.h5/x").shape == (2,)
    (root / "a.h5").unlink()
    assert src.node("a.h5/x").shape == (3,)
    _registered(src)
    with pytest.raises(NotFound):
        src.node("a.h5/x")


def test_lost_notices_drop_every_remembered_row(folder):
    root, src = folder
    assert src.node("a.h5/x").shape == (3,)
    _write(root / "a.h5", 4)
    register(src)  # no notice: the row is still the remembered one...
    src._on_changes(None)  # ...until the feed says notices may have been lost
    assert src.node("a.h5/x").shape == (4,)

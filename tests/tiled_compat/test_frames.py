"""TiledWriter's per-event shape of external fields (server/tiled_frames.py), checked against
bluesky-tiled-plugins' own consolidator for each combination of a descriptor's shape and a
resource's frames per point."""

from __future__ import annotations

import pytest

from bluebroker.server.tiled_frames import writer_row_shape

consolidators = pytest.importorskip("bluesky_tiled_plugins.writing.consolidators")

SHAPES = [(6, 5), (1, 6, 5), (3, 6, 5), (2, 6, 5), (1,), (), (7,)]
MULTIPLIERS = [None, 1, 3]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_row_shape_as_tiledwriter_makes_it(shape, multiplier):
    parameters = {"dataset": "/entry/data/data"}
    if multiplier is not None:
        parameters["multiplier"] = multiplier
    stream_resource = {
        "uid": "sr",
        "data_key": "cam",
        "uri": "file://localhost/tmp/cam.h5",
        "mimetype": "application/x-hdf5",
        "parameters": parameters,
    }
    descriptor = {
        "data_keys": {
            "cam": {"source": "SIM:cam", "dtype": "array", "dtype_numpy": "<u2", "shape": shape}
        }
    }
    theirs = consolidators.ConsolidatorBase(stream_resource, descriptor).shape
    assert (0, *writer_row_shape(shape, multiplier)) == theirs

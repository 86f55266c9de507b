"""The wire decoder agrees with msgpack-numpy on every value it accepts and refuses pickles."""

from __future__ import annotations

import msgpack
import msgpack_numpy
import numpy as np
import pytest

from bluebroker.ingest import wire

VALUES = [
    np.arange(6.0).reshape(2, 3),
    np.arange(4, dtype=">i2"),
    np.float32(1.5),
    np.int64(3),
    np.bool_(True),
    np.array(["a", "bc"]),
    np.zeros(3, dtype=[("x", "f8"), ("y", "i4")]),
    np.zeros(2, dtype=[("p", [("a", "f8")]), ("q", "u1")]),
    np.complex128(1 + 2j),
    np.array([1 + 1j, 2]),
    1 + 3j,
    "nd",  # the marker's own spelling as a value must not confuse the fast path
    {"nd": 1, "complex": 2},
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_decode_matches_msgpack_numpy(value):
    payload = msgpack.packb(("event", {"data": {"v": value}}), default=msgpack_numpy.encode)
    ours = wire.decode(payload)[1]["data"]["v"]
    theirs = msgpack.unpackb(payload, object_hook=msgpack_numpy.decode, strict_map_key=False)
    theirs = theirs[1]["data"]["v"]
    assert type(ours) is type(theirs)
    assert getattr(ours, "dtype", None) == getattr(theirs, "dtype", None)
    assert np.array_equal(ours, theirs) if isinstance(ours, np.ndarray) else ours == theirs


def test_pickled_object_arrays_are_refused():
    value = np.array([object(), None], dtype=object)
    payload = msgpack.packb(("event", {"data": {"v": value}}), default=msgpack_numpy.encode)
    with pytest.raises(wire.WireError, match="pickled numpy object array"):
        wire.decode(payload)


def test_object_arrays_are_sent_as_lists_not_pickles():
    payload = wire.encode("event", {"data": {"v": np.array([{"a": 1}, None], dtype=object)}})
    assert wire.decode(payload)[1]["data"]["v"] == [{"a": 1}, None]


def test_round_trip_of_a_plain_document():
    doc = {"uid": "u", "time": 1.0, "data": {"x": [1, 2]}, "text": "second and nd"}
    assert wire.decode(wire.encode("start", doc)) == ("start", doc)


def test_document_bytes_are_cut_out_of_the_message():
    doc = {"uid": "u", "data": {"x": np.arange(3.0)}, "seq_num": 1}
    payload = msgpack.packb(("event", doc), default=msgpack_numpy.encode)
    cut = wire.document_bytes(payload, "event")
    assert cut is not None
    back = msgpack.unpackb(cut, object_hook=msgpack_numpy.decode)
    assert back["uid"] == "u" and np.array_equal(back["data"]["x"], np.arange(3.0))
    assert wire.document_bytes(msgpack.packb({"not": "a pair"}), "event") is None
    assert wire.document_bytes(msgpack.packb(["stop", {}]), "event") is None


def test_pickles_are_refused_even_after_bluesky_kafka_patched_msgpack():
    """bluesky-kafka calls msgpack_numpy.patch() on import, which makes msgpack.unpackb
    unpickle object arrays before any hook runs; packing must not go through it."""
    import bluesky_kafka  # noqa: F401  (patches msgpack for the whole process)

    assert msgpack.unpackb is msgpack_numpy.unpackb  # the patch is in place
    payload = msgpack_numpy.packb(("event", {"data": {"v": np.array([object()], dtype=object)}}))
    with pytest.raises(wire.WireError, match="pickled numpy object array"):
        wire.decode(payload)
    plain = wire.encode("event", {"data": {"v": np.array([{"a": 1}, None], dtype=object)}})
    assert wire.decode(plain)[1]["data"]["v"] == [{"a": 1}, None]

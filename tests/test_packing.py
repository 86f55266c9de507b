"""The msgpack(-numpy) decoder: everything msgpack-numpy encodes comes back equal, and no
payload, however made, gets past it as anything but plain values or ``PayloadRefused``."""

from __future__ import annotations

import contextlib
import math
import subprocess
import sys

import msgpack
import msgpack_numpy
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bluebroker import packing
from bluebroker.ingest import wire

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _nd(type_: object, shape: object, data: object, **extra: object) -> bytes:
    return _pack(
        {
            b"nd": True,
            b"type": type_,
            b"kind": b"",
            b"shape": shape,
            b"data": data,
            **{k.encode(): v for k, v in extra.items()},
        }
    )


# -- what msgpack-numpy (bluesky-kafka) sends comes back as it was -----------------------------

PLAIN_DTYPES = st.one_of(
    hnp.scalar_dtypes(),
    hnp.byte_string_dtypes(max_len=8),
    hnp.unicode_string_dtypes(max_len=8),
)
DTYPES = st.one_of(PLAIN_DTYPES, hnp.array_dtypes(PLAIN_DTYPES, max_size=4))


@FUZZ
@given(hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)))
def test_arrays_from_msgpack_numpy_round_trip(arr):
    payloads = [packing.packb(arr)]
    # msgpack-numpy's own encoder refuses datetimes and some field names (numpy's buffer
    # protocol does); bluebroker's encodes them all
    with contextlib.suppress(ValueError):
        payloads.append(msgpack_numpy.packb(arr))
    for payload in payloads:
        out = packing.unpackb(payload)
        assert isinstance(out, np.ndarray)
        assert out.dtype == arr.dtype and out.shape == arr.shape
        assert out.tobytes() == arr.tobytes()
        assert not out.flags.writeable  # a view of the message's own bytes, never written


@FUZZ
@given(
    hnp.scalar_dtypes()
    .filter(lambda d: d.kind not in "mM")
    .flatmap(hnp.from_dtype)
    .map(lambda v: np.asarray(v)[()])
)
def test_numpy_scalars_round_trip(value):
    for payload in (packing.packb({"v": value}), msgpack_numpy.packb({"v": value})):
        out = packing.unpackb(payload)["v"]
        if type(value) is np.float64:  # a float subclass, which msgpack packs as a float
            out = np.float64(out)
        assert type(out) is type(value) and out.tobytes() == value.tobytes()


# -- what an attacker can send ----------------------------------------------------------------

INTS = st.integers(-(2**63), 2**64 - 1)  # what msgpack can carry
TYPE_NAMES = [
    "|O",
    "O",
    "object",
    "<O8",
    "f8,O",
    "V0",
    "|V8",
    "S0",
    "U0",
    "<U2",
    ">U1",
    "?",
    "<f8",
    ">i2",
    "u1",
    "(2,)i4",
    "(3,)O",
    "M8[ns]",
    "<m8[s]",
    "c16",
    "int",
    "garbage",
    "",
    "S99999999999",
    "(99999999999,)f8",
]
STRUCTURED = st.recursive(
    st.sampled_from(TYPE_NAMES),
    lambda inner: st.lists(
        st.one_of(
            st.tuples(st.text(max_size=3), inner),
            st.tuples(st.text(max_size=3), inner, st.lists(st.integers(-2, 3), max_size=2)),
            st.lists(INTS, max_size=3),
        ),
        max_size=3,
    ),
    max_leaves=6,
)
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    INTS,
    st.text(max_size=8),
    st.binary(max_size=16),
    st.lists(INTS, max_size=3),
)


@st.composite
def hostile_arrays(draw):
    """msgpack-numpy maps whose fields are drawn to be plausible, wrong, or both; the data
    often has exactly the length the type and shape call for, so decoding gets far."""
    good = st.sampled_from(["<f8", "<U2", "?", "(2,)i4", "|V8", ">i2", "M8[ns]", "c8"])
    type_ = draw(st.one_of(good, good, st.sampled_from(TYPE_NAMES), STRUCTURED, ANYTHING))
    shape = draw(
        st.one_of(
            st.lists(st.integers(0, 4), max_size=3),
            st.lists(st.integers(0, 4), max_size=3),
            st.lists(st.one_of(st.integers(-3, 2**64 - 1), st.booleans()), max_size=40),
            ANYTHING,
        )
    )
    nd = draw(st.sampled_from([True, True, True, True, False, 1, None]))
    try:  # the length that fits (the decoder under test only hints it)
        size = packing.safe_dtype(type_).itemsize * (math.prod(shape) if nd is True else 1)
    except Exception:
        size = draw(st.integers(0, 64))
    size = size if type(size) is int and 0 <= size < 4096 else 0
    data = draw(
        st.one_of(
            st.binary(min_size=size, max_size=size),
            st.binary(min_size=size, max_size=size),
            st.binary(max_size=64),
            ANYTHING,
        )
    )
    return {
        b"nd": nd,
        b"type": type_,
        b"kind": draw(st.sampled_from([b"", b"", b"", b"V", b"O", b"x", None])),
        b"shape": shape,
        b"data": data,
    }


def _assert_plain(out: object) -> None:
    """Decoded values are plain msgpack values or numpy values without objects."""
    if isinstance(out, np.ndarray | np.generic):
        assert not out.dtype.hasobject
        if isinstance(out, np.ndarray):
            assert not out.flags.writeable
            out.tolist()  # every element reads (no text past U+10FFFF, no wild pointers)
        else:
            out.item()
    elif isinstance(out, dict):
        for key, value in out.items():
            _assert_plain(key)
            _assert_plain(value)
    elif isinstance(out, list):
        for value in out:
            _assert_plain(value)
    else:
        assert out is None or isinstance(out, bool | int | float | complex | str | bytes)


@FUZZ
@given(hostile_arrays())
def test_hostile_msgpack_numpy_maps_are_refused_or_safe(obj):
    try:
        out = packing.unpackb(_pack({"v": obj}))["v"]
    except packing.PayloadRefused:
        return
    _assert_plain(out)
    if isinstance(out, np.ndarray):
        assert out.nbytes == len(obj[b"data"])


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_are_refused(payload):
    with contextlib.suppress(packing.PayloadRefused):
        _assert_plain(packing.unpackb(payload))
    unpacker = packing.unpacker()
    unpacker.feed(payload)
    try:
        for out in unpacker:
            _assert_plain(out)
    except packing.PayloadRefused:
        pass


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (_nd("|O", [4], b"A" * 32), "holds Python objects"),
        (_nd([["a", "<f8"], ["b", [["c", "|O"]]]], [1], b"A" * 16), "holds Python objects"),
        (_nd("f8,O", [1], b"A" * 16), "holds Python objects"),
        (_nd("<f8", [100], b""), "needs 800 bytes of data, got 0"),
        (_nd("<f8", [1], b"A" * 9), "needs 8 bytes of data, got 9"),
        (_nd("<f8", [-1], b""), "non-negative"),
        (_nd("<f8", [2**40, 2**40], b""), "needs"),
        (_nd("<f8", [1] * 33, b"A" * 8), "at most 32"),
        (_nd("<f8", [1], "AAAAAAAA"), "must be msgpack bin"),
        (_nd(5, [1], b"A" * 8), "not a numpy dtype"),
        (_nd("V0", [10**6], b""), "item size of 0"),
        (_nd("|V99999999", [0], b""), "item size"),
        (_nd("<U1", [1], b"\xff\xff\xff\xff"), "not Unicode"),
        (_nd("?", [2], b"\x00\x02"), "other than 0 and 1"),
        (_nd("<f8", [1], b"A" * 8, kind=b"O"), "pickled"),
        (_pack({b"nd": False, b"type": "|O", b"data": b"A" * 8}), "holds Python objects"),
        (_pack({b"nd": False, b"type": "<f8", b"data": b""}), "needs 8 bytes"),
        (_pack({b"complex": True, b"data": [1]}), "complex"),
        (_pack({(1, 2): 3}), "not msgpack"),
        (b"\x92\x01", "not msgpack"),
        (_pack(msgpack.ExtType(5, b"x")), "extension type 5"),
    ],
)
def test_each_unsafe_payload_is_refused_with_its_reason(payload, match):
    with pytest.raises(packing.PayloadRefused, match=match):
        packing.unpackb(payload)
    with pytest.raises(wire.WireError, match=match):  # the Kafka worker dead-letters it
        wire.decode(_pack(["event", {}])[:-1] + payload)


def test_an_object_dtype_without_the_pickle_marker_does_not_crash_the_process():
    """It used to hand the bytes to numpy as PyObject pointers: a segfault on first use."""
    code = (
        "import msgpack\n"
        "from bluebroker import packing\n"
        "p = msgpack.packb({b'nd': True, b'type': '|O', b'shape': [4], b'data': b'A' * 32})\n"
        "try:\n"
        "    print(repr(packing.unpackb(p)))\n"
        "except packing.PayloadRefused as err:\n"
        "    print('refused:', err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused: dtype '|O' holds Python objects")


def test_a_posted_object_dtype_is_a_400_and_the_server_lives_on(served):
    import httpx

    doc = {"uid": "x", "time": 1.0, "v": {"nd": True}}
    body = _pack([["start", doc]]).replace(
        _pack({"nd": True}), _pack({b"nd": True, b"type": "|O", b"shape": [4], b"data": b"A" * 32})
    )
    with httpx.Client(base_url=served, timeout=30) as client:
        r = client.post(
            "/api/v1/documents/bmm/raw",
            content=body,
            headers={"Content-Type": "application/x-msgpack"},
        )
        assert r.status_code == 400, r.text
        assert "holds Python objects" in r.json()["detail"]
        assert client.get("/api/v1/").status_code == 200


def test_a_client_refuses_an_unsafe_message_from_a_server():
    """A hostile (or broken) server gets a clear error out of a live subscription, not a
    crashed client or a subscription that silently waits."""
    import asyncio
    import threading
    from types import SimpleNamespace

    import httpx
    from websockets.asyncio.server import serve

    from bluebroker.client.live import Subscription
    from bluebroker.client.transport import ClientError

    bad = _pack({b"nd": True, b"type": "|O", b"shape": [4], b"data": b"A" * 32})
    ready: dict = {}

    async def handler(ws):
        await ws.send(bad)
        await ws.wait_closed()

    async def main():
        async with serve(handler, "127.0.0.1", 0) as server:
            ready["port"] = server.sockets[0].getsockname()[1]
            ready["stop"] = asyncio.get_running_loop().create_future()
            started.set()
            await ready["stop"]

    started = threading.Event()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10)
    transport = SimpleNamespace(api=f"http://127.0.0.1:{ready['port']}/api/v1", http=httpx.Client())
    try:
        sub = Subscription(transport, ("bmm", "raw"), reconnect=False)
        with pytest.raises(ClientError, match=r"unusable message.*holds Python objects"):
            sub.start(timeout=10)
    finally:
        loop.call_soon_threadsafe(ready["stop"].set_result, None)
        thread.join(10)
        transport.http.close()

"""msgpack with numpy arrays, in msgpack-numpy's wire format, minus its dangers.

msgpack-numpy encodes numpy object arrays by pickling them and unpickles them on decode.
Unpickling bytes that came over a network (a Kafka topic, an HTTP body, a server response)
lets whoever wrote them run code in the reader. bluebroker therefore never writes a pickle
(object arrays travel as plain msgpack lists) and refuses one when it reads. Everything else
is byte-compatible with msgpack-numpy, so bluesky-kafka producers and consumers interoperate.

msgpack-numpy also hands the sender's bytes to numpy as the memory of an array of whatever
dtype the sender names. A dtype holding Python objects (``type: "|O"`` without the pickle
marker) turns those bytes into pointers, and one message crashes the process; a buffer shorter
than its shape reads past it. So a payload is decoded only when the dtype actually built holds
no objects, is of sane size, and the bytes fill the shape exactly; otherwise it is refused with
:class:`PayloadRefused`, the one exception every decode path maps to a 400 or a dead letter.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import msgpack
import msgpack_numpy
import numpy as np

# msgpack's own functions, taken from its implementation modules: ``msgpack_numpy.patch()``
# (which bluesky-kafka calls on import) replaces ``msgpack.unpackb`` and friends with versions
# that run msgpack-numpy's decoder, which unpickles, before ours. Anyone importing
# bluesky_kafka in the same process would otherwise switch the pickle refusal off.
try:
    from msgpack._cmsgpack import Packer as _Packer
    from msgpack._cmsgpack import Unpacker as _Unpacker
    from msgpack._cmsgpack import unpackb as _unpackb
except ImportError:  # msgpack without its C extension
    from msgpack.fallback import Packer as _Packer
    from msgpack.fallback import Unpacker as _Unpacker
    from msgpack.fallback import unpackb as _unpackb

# Bounds on what a payload may describe. An element (a row of a structured dtype) is at most
# 16 MiB, arrays have at most 32 dimensions (numpy allows 64), structured dtypes nest at most
# 8 deep: real documents are far inside all three.
MAX_ITEMSIZE = 1 << 24
MAX_NDIM = 32
MAX_DTYPE_DEPTH = 8
_MAX_CODE_POINT = 0x10FFFF
_CHECKED = "UbV"  # kinds whose bytes are checked (V: the fields of structured ones)


class PayloadRefused(ValueError):
    """Bytes that are not a safe msgpack(-numpy) payload; nothing of them was used."""


class PickleRefused(PayloadRefused):
    """A msgpack-numpy payload carried a pickled object array; it was not unpickled."""


def encode_default(obj: Any) -> Any:
    """``default=`` for msgpack: numpy values as msgpack-numpy does, object arrays as lists.

    Datetimes too, which msgpack-numpy's own encoder cannot take (numpy keeps them out of
    the buffer protocol it uses)."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            return obj.tolist()
        structured = obj.dtype.kind == "V"
        return {
            b"nd": True,
            b"type": obj.dtype.descr if structured else obj.dtype.str,
            b"kind": b"V" if structured else b"",
            b"shape": obj.shape,
            b"data": _buffer(obj),
        }
    if isinstance(obj, np.datetime64 | np.timedelta64):
        return {b"nd": False, b"type": obj.dtype.str, b"data": obj.tobytes()}
    return msgpack_numpy.encode(obj)


def _buffer(arr: np.ndarray) -> Any:
    """The array's bytes, without a copy where numpy lends them."""
    if arr.flags.c_contiguous:
        try:
            return arr.data
        except ValueError:  # datetimes are kept out of the buffer protocol
            pass
    return arr.tobytes()


def decode_hook(obj: dict) -> Any:
    """``object_hook=`` for msgpack: msgpack-numpy's decoding, refusing anything unsafe.

    A map with msgpack-numpy's ``nd`` marker but without its other keys is left as a map, as
    msgpack-numpy does; one that has them is either a safe numpy value or refused."""
    if b"nd" in obj:
        if not (b"type" in obj and b"data" in obj and (obj[b"nd"] is not True or b"shape" in obj)):
            return obj
        if obj.get(b"kind") == b"O":
            raise PickleRefused(
                "carries a pickled numpy object array, which bluebroker does not unpickle; "
                "send numeric or string arrays (or lists) instead"
            )
        return _array(obj) if obj[b"nd"] is True else _scalar(obj)
    if b"complex" in obj and b"data" in obj:
        text = _text(obj[b"data"])
        if not isinstance(text, str) or len(text) > 100:
            raise PayloadRefused("a msgpack-numpy complex number must be its text, like '(1+2j)'")
        try:
            return complex(text)
        except ValueError:
            raise PayloadRefused(f"{text!r} is not a complex number") from None
    return obj


def _array(obj: dict) -> np.ndarray:
    dtype = safe_dtype(obj[b"type"])
    shape = obj[b"shape"]
    if not (
        type(shape) is list
        and len(shape) <= MAX_NDIM
        and all([type(n) is int and n >= 0 for n in shape])
    ):
        raise PayloadRefused(
            f"a msgpack-numpy array's shape must be a list of at most {MAX_NDIM} non-negative "
            f"integers, got {_short(shape)}"
        )
    data = _bytes(obj[b"data"])
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise PayloadRefused(
            f"a msgpack-numpy array of shape {tuple(shape)} and dtype {dtype.str} needs "
            f"{expected} bytes of data, got {len(data)}"
        )
    try:  # a view of the bytes msgpack just made (read-only, aliasing nothing else)
        arr = np.ndarray(buffer=data, dtype=dtype, shape=shape)
    except (TypeError, ValueError) as err:  # e.g. a subarray dtype past numpy's dimensions
        raise PayloadRefused(f"not a valid msgpack-numpy array: {err}") from None
    if dtype.kind in _CHECKED:
        _check_values(arr)
    return arr


def _scalar(obj: dict) -> Any:
    dtype = safe_dtype(obj[b"type"])
    data = _bytes(obj[b"data"])
    if len(data) != dtype.itemsize:
        raise PayloadRefused(
            f"a msgpack-numpy {dtype.str} scalar needs {dtype.itemsize} bytes, got {len(data)}"
        )
    arr = np.frombuffer(data, dtype=dtype)
    if dtype.kind in _CHECKED:
        _check_values(arr)
    return arr[0]


def safe_dtype(descr: Any) -> np.dtype:
    """The dtype msgpack-numpy's description names, or :class:`PayloadRefused` when it is
    not one whose bytes are plain values: no objects (at any depth), a sane item size."""
    if type(descr) is str and len(descr) <= 64:  # the usual case: a few type strings, often
        return _named_dtype(descr)
    return _checked_dtype(descr)


@functools.lru_cache(maxsize=256)
def _named_dtype(descr: str) -> np.dtype:
    return _checked_dtype(descr)  # a refusal raises, and is not remembered


def _checked_dtype(descr: Any) -> np.dtype:
    try:
        dtype = _dtype(descr, 0)
    except PayloadRefused:
        raise
    except Exception as err:  # numpy raises TypeError, ValueError and others for nonsense
        raise PayloadRefused(f"{_short(descr)} is not a numpy dtype ({err})") from None
    if dtype.hasobject:
        raise PayloadRefused(
            f"dtype {_short(descr)} holds Python objects, which bluebroker never builds from "
            "bytes; send numeric or string arrays (or lists) instead"
        )
    if not 0 < dtype.itemsize <= MAX_ITEMSIZE:
        raise PayloadRefused(
            f"dtype {_short(descr)} has an item size of {dtype.itemsize} bytes; "
            f"bluebroker accepts 1 to {MAX_ITEMSIZE}"
        )
    return dtype


def _dtype(descr: Any, depth: int) -> np.dtype:
    """A dtype from msgpack-numpy's description: a type string, or (structured) a list of
    ``[name, type, *shape]`` whose types nest as lists."""
    if depth > MAX_DTYPE_DEPTH:
        raise PayloadRefused(f"structured dtype nests deeper than {MAX_DTYPE_DEPTH} levels")
    descr = _text(descr)
    if isinstance(descr, str):
        return np.dtype(descr)
    if not isinstance(descr, list | tuple) or not descr:
        raise PayloadRefused(f"{_short(descr)} is not a numpy dtype description")
    fields = []
    for field in descr:
        if not (isinstance(field, list | tuple) and 2 <= len(field) <= 3):
            raise PayloadRefused(f"structured dtype field {_short(field)} is not [name, type]")
        name, kind = _text(field[0]), field[1]
        if isinstance(name, list | tuple):  # (title, name)
            name = tuple(_text(n) for n in name)
        if not (isinstance(name, str) or (len(name) == 2 and all(type(n) is str for n in name))):
            raise PayloadRefused(f"structured dtype field name {_short(name)} is not text")
        shape = () if len(field) == 2 else field[2]
        shape = tuple(shape) if isinstance(shape, list | tuple) else (shape,)
        if not all(type(n) is int and n >= 0 for n in shape):
            raise PayloadRefused(f"structured dtype field {name!r} has shape {_short(shape)}")
        sub = _dtype(kind, depth + 1)
        fields.append((name, sub, shape) if shape else (name, sub))
    return np.dtype(fields)


def _check_values(arr: np.ndarray) -> None:
    """Refuse bytes that no numpy operation would have written: text beyond Unicode (a Python
    string past U+10FFFF is a corrupt object that breaks the interpreter) and booleans other
    than 0 and 1."""
    dtype = arr.dtype
    if dtype.names:
        for name in dtype.names:
            _check_values(arr[name])
    elif dtype.kind == "U" and arr.size:
        points = np.frombuffer(arr.tobytes(), dtype.byteorder.replace("|", "=") + "u4")
        if points.max() > _MAX_CODE_POINT:
            raise PayloadRefused("a text array holds values that are not Unicode characters")
    elif dtype.kind == "b" and arr.size and np.frombuffer(arr.tobytes(), np.uint8).max() > 1:
        raise PayloadRefused("a boolean array holds bytes other than 0 and 1")


def _bytes(data: Any) -> bytes:
    if type(data) is not bytes:
        raise PayloadRefused(
            f"msgpack-numpy data must be msgpack bin (bytes), got {type(data).__name__}"
        )
    return data


def _refuse_ext(code: int, data: bytes) -> Any:
    raise PayloadRefused(f"msgpack extension type {code} is not part of the document format")


# Only plain values come out: extension types are refused, and msgpack's own timestamp
# extension (decoded without the ext hook) becomes float seconds.
_PLAIN = {"ext_hook": _refuse_ext, "timestamp": 1}


# How msgpack-numpy's markers look on the wire (bin-typed map keys). A payload without them
# holds no numpy values and is unpacked without a Python call per map (about 2x faster).
_ND, _COMPLEX = b"\xc4\x02nd", b"\xc4\x07complex"


def packb(obj: Any) -> bytes:
    return _Packer(default=encode_default).pack(obj)


def unpackb(payload: bytes) -> Any:
    """Decode one msgpack object; anything that is not one, or not safe, is
    :class:`PayloadRefused` (msgpack's own error is its ``__cause__``)."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise PayloadRefused(f"expected msgpack bytes, got {type(payload).__name__}")
    hook = decode_hook if _ND in payload or _COMPLEX in payload else None
    try:
        return _unpackb(payload, object_hook=hook, strict_map_key=False, **_PLAIN)
    except PayloadRefused:
        raise
    except Exception as err:  # msgpack raises several types (TypeError for list keys)
        raise PayloadRefused(f"not msgpack ({type(err).__name__}: {err})") from err


class Unpacker(_Unpacker):
    """A streaming :class:`msgpack.Unpacker` whose errors are :class:`PayloadRefused`."""

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except (StopIteration, PayloadRefused):
            raise
        except Exception as err:
            raise PayloadRefused(f"not msgpack ({type(err).__name__}: {err})") from err


def unpacker(file: Any = None, **kwargs: Any) -> msgpack.Unpacker:
    """A streaming unpacker with the same decoding and refusals as :func:`unpackb`."""
    return Unpacker(file, object_hook=decode_hook, strict_map_key=False, **_PLAIN, **kwargs)


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if type(value) is bytes else value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

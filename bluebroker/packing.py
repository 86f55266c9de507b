"""msgpack with numpy arrays, in msgpack-numpy's wire format, minus its one danger.

msgpack-numpy encodes numpy object arrays by pickling them and unpickles them on decode.
Unpickling bytes that came over a network (a Kafka topic, an HTTP body, a server response)
lets whoever wrote them run code in the reader. bluebroker therefore never writes a pickle
(object arrays travel as plain msgpack lists) and refuses one when it reads. Everything else
is byte-compatible with msgpack-numpy, so bluesky-kafka producers and consumers interoperate.
"""

from __future__ import annotations

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


class PickleRefused(ValueError):
    """A msgpack-numpy payload carried a pickled object array; it was not unpickled."""


def encode_default(obj: Any) -> Any:
    """``default=`` for msgpack: numpy values as msgpack-numpy does, object arrays as lists."""
    if isinstance(obj, np.ndarray) and obj.dtype.kind == "O":
        return obj.tolist()
    return msgpack_numpy.encode(obj)


def decode_hook(obj: dict) -> Any:
    """``object_hook=`` for msgpack: msgpack-numpy's decoding, refusing pickles."""
    if b"nd" in obj:
        try:
            kind = obj.get(b"kind")
            if kind == b"O":
                raise PickleRefused(
                    "carries a pickled numpy object array, which bluebroker does not unpickle; "
                    "send numeric or string arrays (or lists) instead"
                )
            dtype = _dtype(obj[b"type"])
            if obj[b"nd"] is True:
                return np.ndarray(buffer=obj[b"data"], dtype=dtype, shape=obj[b"shape"])
            return np.frombuffer(obj[b"data"], dtype=dtype)[0]
        except KeyError:
            return obj
    if b"complex" in obj:
        return complex(_text(obj[b"data"]))
    return obj


# How msgpack-numpy's markers look on the wire (bin-typed map keys). A payload without them
# holds no numpy values and is unpacked without a Python call per map (about 2x faster).
_ND, _COMPLEX = b"\xc4\x02nd", b"\xc4\x07complex"


def packb(obj: Any) -> bytes:
    return _Packer(default=encode_default).pack(obj)


def unpackb(payload: bytes) -> Any:
    """Decode one msgpack object; raises :class:`PickleRefused` or msgpack's own errors."""
    hook = decode_hook if _ND in payload or _COMPLEX in payload else None
    return _unpackb(payload, object_hook=hook, strict_map_key=False)


def unpacker(file: Any = None, **kwargs: Any) -> msgpack.Unpacker:
    """A streaming :class:`msgpack.Unpacker` with the same decoding as :func:`unpackb`."""
    return _Unpacker(file, object_hook=decode_hook, strict_map_key=False, **kwargs)


def _dtype(descr: Any) -> np.dtype:
    """A dtype from msgpack-numpy's description (structured ones nest as lists)."""
    if isinstance(descr, list | tuple):
        return np.dtype(
            [
                (_text(d[0]), _dtype(d[1]), *d[2:])
                if isinstance(d[1], list)
                else tuple(_text(t) for t in d)
                for d in descr
            ]
        )
    return np.dtype(_text(descr))


def _text(value: Any) -> Any:
    return value.decode() if type(value) is bytes else value

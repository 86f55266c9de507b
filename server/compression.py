"""Response compression, zstd or gzip as the client prefers, streaming-friendly.

Bodies are compressed chunk by chunk, so a long document stream is compressed as it goes.
Small bodies and already-compressed formats (PNG, Parquet) are sent as they are.
"""

from __future__ import annotations

import zlib
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIN_BYTES = 1024
# Binary numbers (floats above all) shrink little and cost a compress and a decompress on
# every request; text formats (JSON, CSV, documents) shrink several-fold and are compressed.
INCOMPRESSIBLE = (
    "image/",
    "application/x-parquet",
    "application/vnd.apache.arrow",
    "application/octet-stream",
    "application/x-hdf5",
    "application/x-netcdf",
    "text/event-stream",  # live updates: each event must leave at once, not wait in a buffer
)


def _pick(accept_encoding: str) -> str | None:
    offered = {}
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        offered[name.strip().lower()] = q
    for name in ("zstd", "gzip"):
        if offered.get(name, 0) > 0:
            return name
    return None


class _Compressor:
    def __init__(self, name: str) -> None:
        if name == "zstd":
            import zstandard

            self._obj: Any = zstandard.ZstdCompressor(level=3).compressobj()
        else:
            self._obj = zlib.compressobj(6, zlib.DEFLATED, 31)

    def compress(self, data: bytes) -> bytes:
        return self._obj.compress(data)

    def flush(self) -> bytes:
        return self._obj.flush()


class CompressionMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = b""  # the last Accept-Encoding, as a dict of the headers would keep
        for key, value in scope.get("headers", []):
            if key.lower() == b"accept-encoding":
                offered = value
        encoding = _pick(offered.decode("latin-1")) if offered else None
        if encoding is None:
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = {}

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["start"] = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if "start" in state:
                start = state.pop("start")
                response_headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1")
                    for k, v in start.get("headers", [])
                }
                media = response_headers.get("content-type", "")
                skip = (
                    "content-encoding" in response_headers
                    or media.startswith(INCOMPRESSIBLE)
                    or (not more and len(body) < MIN_BYTES)
                )
                if skip:
                    await send(start)
                    await send(message)
                    state["passthrough"] = True
                    return
                state["compressor"] = _Compressor(encoding)
                raw = [
                    (k, v)
                    for k, v in start.get("headers", [])
                    if k.decode("latin-1").lower() != "content-length"
                ]
                raw += [(b"content-encoding", encoding.encode()), (b"vary", b"Accept-Encoding")]
                await send({**start, "headers": raw})
            if state.get("passthrough"):
                await send(message)
                return
            compressor = state["compressor"]
            data = compressor.compress(body)
            if not more:
                data += compressor.flush()
            await send({"type": "http.response.body", "body": data, "more_body": more})

        await self.app(scope, receive, wrapped)

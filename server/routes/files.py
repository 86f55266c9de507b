"""``/asset/bytes/{path}``: a whole file, streamed from disk as it lies (a served folder's
HDF5 files, images, tables and any other file), with ``Range`` requests.

The file is read in pieces of ``PIECE`` bytes while it is sent, so memory stays constant
whatever its size, and the server's ``max_read_bytes`` (which bounds what a read holds in
memory) does not apply. It is sent as ``application/octet-stream`` and as an attachment,
never as what its name suggests: an HTML file in a data folder must not run as this site.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from bluebroker import formats

from ..deps import node_at
from ..errors import ApiError

router = APIRouter()
PIECE = 1 << 20
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def disposition(name: str) -> str:
    """``attachment`` with an ASCII-only ``filename`` (anything else becomes '_', so no quote,
    semicolon or line break can reach the header) and the real name as RFC 5987
    ``filename*``."""
    plain = UNSAFE.sub("_", name).strip(".") or "download"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single ``Range: bytes=a-b`` (``a-``, ``-n`` too), None for
    the whole file (no header, or several ranges, which may be answered whole); ApiError
    416 when it lies beyond the file."""
    if header is None or "," in header:
        return None
    m = RANGE.fullmatch(header.strip())
    if m is None or m.groups() == ("", ""):
        raise ApiError(
            416,
            f"Range {header!r:.80} is not 'bytes=FIRST-LAST', 'bytes=FIRST-' or 'bytes=-COUNT'",
            {"Content-Range": f"bytes */{size}"},
        )
    first, last = m.groups()
    if first == "":  # the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            raise ApiError(416, "an empty range", {"Content-Range": f"bytes */{size}"})
        return max(0, size - count), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ApiError(
            416,
            f"Range {header!r:.80} is outside this file of {size:,} bytes",
            {"Content-Range": f"bytes */{size}"},
        )
    return start, end


def pieces(f: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    """``length`` bytes from ``start``, a piece at a time; the file is closed at the end,
    also when the client goes away early."""
    try:
        f.seek(start)
        while length > 0:
            piece = f.read(min(PIECE, length))
            if not piece:  # the file shrank while it was sent: the response ends short
                return
            length -= len(piece)
            yield piece
    finally:
        f.close()


@router.get(
    "/api/v1/asset/bytes/{path:path}",
    summary="A whole file as it lies (served folders), streamed; Range requests",
)
def asset_bytes(request: Request, path: str) -> Response:
    node = node_at(request, path)
    name = getattr(node, "download_name", lambda: None)()
    if not name:
        raise ApiError(
            400,
            f"/{path} is not one whole file (a folder, a Zarr store, a TIFF sequence, or a "
            "group or dataset inside a file); download the file that holds it, or read its "
            "data with /array/full or /table/full",
        )
    f = node.open_download()
    try:
        size = os.fstat(f.fileno()).st_size
        wanted = byte_range(request.headers.get("range"), size)
    except BaseException:
        f.close()
        raise
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": disposition(name)}
    start, status = 0, 200
    length = size
    if wanted is not None:
        start, end = wanted
        length = end - start + 1
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(length)
    return StreamingResponse(
        pieces(f, start, length), status_code=status, media_type=formats.OCTET, headers=headers
    )

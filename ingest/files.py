"""Replay documents from files: JSON Lines (``[name, doc]`` per line) or a msgpack stream.

This is how old runs exported by suitcase-jsonl / suitcase-msgpack, or captured from Kafka,
get into a catalog. Documents go through the one writer in batches; bad ones are reported and
skipped, good ones are kept.

Every file is looked at before anything is written: a file of another kind (an image, a CSV
table, a compressed archive) is refused whole, in one sentence that names what it seems to
be, instead of being read as thousands of broken documents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgpack
from tqdm import tqdm

from bluebroker import packing

from .writer import CatalogWriter, Rejected

BATCH = 2000
LISTED = 20  # refusals kept for the report; the rest are only counted
MAX_LINE = 512 << 20  # bytes in one JSON line (an event page with an inline image fits)
EXPECTED = "ingest file reads JSON Lines or msgpack streams of [name, doc] pairs"

# Leading bytes of file kinds that people give to ``ingest file`` by mistake.
MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\x89HDF", "an HDF5 file (detector data are read through the documents that name it)"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x93NUMPY", "a numpy .npy array"),
    (b"CDF\x01", "a netCDF file"),
    (b"CDF\x02", "a netCDF file"),
    (b"SQLite format 3\x00", "a SQLite database (a catalog is given with --catalog)"),
    (b"PK\x03\x04", "a zip archive (unpack it first)"),
    (b"\x1f\x8b", "a gzip-compressed file (gunzip it first)"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file (unzstd it first)"),
    (b"BZh", "a bzip2-compressed file (bunzip2 it first)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file (unxz it first)"),
)
BOM = b"\xef\xbb\xbf"
# msgpack arrays of two items: fixarray, array 16, array 32 (a [name, doc] pair)
MSGPACK_PAIR = (b"\x92", b"\xdc\x00\x02", b"\xdd\x00\x00\x00\x02")


class FileFormatError(ValueError):
    """A file that is neither JSON Lines nor a msgpack stream of (name, doc) pairs."""


def _text_head(head: bytes) -> str | None:
    """The head as text, or None when it is binary (a cut multi-byte character at the end is
    still text)."""
    if any((byte < 0x20 and byte not in b"\t\n\r\f") or byte == 0x7F for byte in head):
        return None  # control characters: a binary file
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:
            return None
        return head[: err.start].decode("utf-8")


def sniff(path: Path) -> str:
    """``"jsonl"``, ``"msgpack"`` or ``"empty"``; any other kind of file is a FileFormatError
    that says what the file seems to be."""
    with path.open("rb") as f:
        head = f.read(256)
    if head.startswith(BOM):
        head = head[len(BOM) :]
    for magic, kind in MAGIC:
        if head.startswith(magic):
            raise FileFormatError(f"{path} is {kind}, not a document file; {EXPECTED}")
    stripped = head.lstrip()
    if not stripped:  # nothing but blank lines so far
        return "empty" if len(head) == path.stat().st_size else "jsonl"
    if stripped[:1] in (b"[", b"{"):
        return "jsonl"
    if head.startswith(MSGPACK_PAIR):
        return "msgpack"
    text = _text_head(head)
    if text is not None:
        first = text.strip().splitlines()[0][:40]
        raise FileFormatError(
            f"{path} is text but not JSON Lines (it begins {first!r}); {EXPECTED}"
        )
    raise FileFormatError(
        f"{path} is a binary file that is not a msgpack stream of [name, doc] pairs "
        f"(it begins with bytes {head[:4].hex(' ')}); {EXPECTED}"
    )


def _jsonl(f: IO[bytes], path: Path) -> Iterator[tuple[int, Any]]:
    for lineno, line in enumerate(iter(lambda: f.readline(MAX_LINE + 1), b""), 1):
        if len(line) > MAX_LINE:  # read no further: parsing it could take all the memory
            raise FileFormatError(
                f"{path}:{lineno}: a line longer than {MAX_LINE >> 20} MiB; expected one "
                "[name, doc] pair per line (is this one big JSON document?)"
            )
        if line.strip():
            try:
                yield lineno, json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                reason = err.msg if isinstance(err, json.JSONDecodeError) else "not UTF-8"
                raise FileFormatError(
                    f"{path}:{lineno}: not JSON ({reason}); expected one [name, doc] pair per line"
                ) from None


def _msgpack(f: IO[bytes], path: Path) -> Iterator[tuple[int, Any]]:
    unpacker = packing.unpacker(f, max_buffer_size=2**31 - 1)
    try:
        yield from enumerate(unpacker, 1)
    except (msgpack.UnpackException, ValueError) as err:
        raise FileFormatError(
            f"{path}: not a msgpack stream of [name, doc] pairs ({err})"
        ) from None


def _describe(record: Any) -> str:
    if isinstance(record, dict):
        keys = ", ".join(sorted(map(str, record))[:4])
        return f"an object with keys {keys} (a single document, not a [name, doc] pair?)"
    if isinstance(record, list | tuple):
        return f"a list of {len(record)} items, not a [name, doc] pair"
    return f"a {type(record).__name__}, not a [name, doc] pair"


def _is_pair(record: Any) -> bool:
    return (
        isinstance(record, list | tuple)
        and len(record) == 2
        and isinstance(record[0], str)
        and isinstance(record[1], dict)
    )


def check_file(path: Path) -> str:
    """Refuse a file that is not a document file, before anything is written: its kind must
    be JSON Lines or msgpack and its first record a [name, doc] pair. Returns the kind."""
    if path.is_dir():
        raise FileFormatError(f"{path} is a folder; give the document files in it")
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    if not path.is_file():  # a device or a pipe: no size to show progress by, maybe no end
        raise FileFormatError(f"{path} is not a regular file; give a document file")
    kind = sniff(path)
    if kind == "empty":
        return kind
    with path.open("rb") as f:
        reader = _jsonl(f, path) if kind == "jsonl" else _msgpack(f, path)
        for position, record in reader:
            if not _is_pair(record):
                where = f"line {position}" if kind == "jsonl" else "its first record"
                raise FileFormatError(f"{path}: {where} is {_describe(record)}; {EXPECTED}")
            break
    return kind


def read_documents(path: Path, progress: tqdm | None = None) -> Iterator[tuple[str, Any]]:
    """Yield (position, pair) from a JSONL or msgpack file, updating ``progress`` in bytes."""
    kind = sniff(path)
    if kind == "empty":
        return
    with path.open("rb") as f:
        reader = _jsonl(f, path) if kind == "jsonl" else _msgpack(f, path)
        last = 0
        for position, pair in reader:
            if progress is not None:
                here = f.tell()
                progress.update(here - last)
                last = here
            yield f"{path.name}:{position}", pair


@dataclass
class ReplayReport:
    """What a replay did. ``rejected`` keeps the first ``LISTED`` refusals (where, why);
    ``refused`` counts them all, so a file of a million bad documents costs no memory."""

    written: int = 0
    duplicates: int = 0
    refused: int = 0
    rejected: list[tuple[str, Rejected]] = field(default_factory=list)


def replay(paths: list[Path], writer: CatalogWriter, show_progress: bool = True) -> ReplayReport:
    """Write every document of ``paths`` through ``writer``, in order, in batches. Every
    file is checked first (``check_file``): one of the wrong kind stops the replay before
    anything is written."""
    for path in paths:
        check_file(path)
    report = ReplayReport()
    total = sum(p.stat().st_size for p in paths)
    with tqdm(
        total=total, unit="B", unit_scale=True, desc="ingest", disable=not show_progress
    ) as bar:
        for path in paths:
            batch: list[Any] = []
            where: list[str] = []
            for position, pair in read_documents(path, bar):
                batch.append(pair)
                where.append(position)
                if len(batch) >= BATCH:
                    _write(writer, batch, where, report)
                    batch, where = [], []
            if batch:
                _write(writer, batch, where, report)
    return report


def _write(writer: CatalogWriter, batch: list, where: list[str], report: ReplayReport) -> None:
    result = writer.write_many(batch, strict=False)
    report.written += result.written
    report.duplicates += result.duplicates
    report.refused += len(result.rejected)
    room = max(0, LISTED - len(report.rejected))
    report.rejected.extend((where[r.index], r) for r in result.rejected[:room])

"""Replay documents from files: JSON Lines (``[name, doc]`` per line) or a msgpack stream.

This is how old runs exported by suitcase-jsonl / suitcase-msgpack, or captured from Kafka,
get into a catalog. Documents go through the one writer in batches; bad ones are reported and
skipped, good ones are kept.
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


class FileFormatError(ValueError):
    """A file that is neither JSON Lines nor a msgpack stream of (name, doc) pairs."""


def _sniff(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(64).lstrip()
    if not head:
        return "empty"
    if head[:1] in (b"[", b"{"):
        return "jsonl"
    return "msgpack"


def _jsonl(f: IO[bytes], path: Path) -> Iterator[tuple[int, Any]]:
    for lineno, line in enumerate(f, 1):
        if line.strip():
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as err:
                raise FileFormatError(
                    f"{path}:{lineno}: not JSON ({err.msg}); expected one [name, doc] pair per line"
                ) from None


def _msgpack(f: IO[bytes], path: Path) -> Iterator[tuple[int, Any]]:
    unpacker = packing.unpacker(f, max_buffer_size=2**31 - 1)
    try:
        yield from enumerate(unpacker, 1)
    except (msgpack.UnpackException, ValueError) as err:
        raise FileFormatError(
            f"{path}: not a msgpack stream of [name, doc] pairs ({err})"
        ) from None


def read_documents(path: Path, progress: tqdm | None = None) -> Iterator[tuple[str, Any]]:
    """Yield (position, pair) from a JSONL or msgpack file, updating ``progress`` in bytes."""
    kind = _sniff(path)
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
    written: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, Rejected]] = field(default_factory=list)


def replay(paths: list[Path], writer: CatalogWriter, show_progress: bool = True) -> ReplayReport:
    """Write every document of ``paths`` through ``writer``, in order, in batches."""
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
    report.rejected.extend((where[r.index], r) for r in result.rejected)

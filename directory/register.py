"""Registration: bring the index in line with the folder, reading only what changed.

Units whose signature (size, modification time; a sequence's members; a store's metadata
files) matches the index are not opened again, so restarting a server on a large folder
costs one walk. Changed units are described by their reader and replaced in batches of
one transaction each; units gone from the folder are removed.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .index import delete_units, insert_rows, signatures, sources
from .readers import Entry
from .walk import Unit, escaping_link, scan

if TYPE_CHECKING:
    from .source import DirectorySource

log = logging.getLogger(__name__)
BATCH = 200


@dataclass
class Report:
    """What one registration did (paths from the served folder)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    unreadable: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{self.unchanged} unchanged, {len(self.unreadable)} unreadable "
            f"in {self.seconds:.1f} s"
        )


def _row(source: DirectorySource, unit: Unit, entry: Entry, top: bool, error: str | None) -> dict:
    path = f"{unit.path}/{entry.inner}" if entry.inner else unit.path
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    return {
        "source_id": source.id,
        "path": path,
        "parent": parent,
        "name": path.rsplit("/", 1)[-1],
        "unit": unit.path,
        "reader": unit.reader.name if unit.reader is not None and not error else "file",
        "kind": entry.kind,
        "family": entry.family,
        "inner": entry.inner,
        "files": unit.files,
        "size": unit.size,
        "mtime": unit.mtime,
        "signature": unit.signature if top else None,
        "structure": entry.structure,
        "metadata": entry.metadata,
        "text": " ".join(entry.text.split())[:100_000],
        "error": error,
    }


def raw_entry(unit: Unit, error: str | None = None) -> Entry:
    """A file served as its bytes: no reader knows it, or its reader could not read it."""
    meta: dict[str, Any] = {"size": unit.size, "mtime": unit.mtime}
    if error:
        meta["error"] = error
    structure = {"shape": [unit.size], "dtype": "|u1", "dims": ["byte"]}
    return Entry("array", "error" if error else "file", structure, meta, "", unit.name)


def describe(source: DirectorySource, unit: Unit) -> list[dict]:
    """The index rows of one unit; a reader's failure makes it an unreadable entry."""
    if unit.kind == "directory":
        entry = Entry("container", "directory", {}, {}, "", unit.name)
        return [_row(source, unit, entry, True, None)]
    if unit.kind == "refused":
        entry = Entry("container", "refused", {"count": 0}, {"error": unit.reason}, "", unit.name)
        return [_row(source, unit, entry, True, unit.reason)]
    if unit.reader is None:
        return [_row(source, unit, raw_entry(unit), True, None)]
    if unit.kind == "store":  # its reader opens files below it: none may lead out
        link = escaping_link(source.root, source.real(unit.path))
        if link is not None:
            reason = f"it holds a link out of the served directory ({link}); refused"
            entry = Entry("container", "refused", {"count": 0}, {"error": reason}, "", unit.name)
            return [_row(source, unit, entry, True, reason)]
    try:
        entries = unit.reader.describe([source.real(f) for f in unit.files])
    except Exception as err:
        reason = f"{unit.reader.name} reader: {type(err).__name__}: {' '.join(str(err).split())}"
        reason = reason[:500]
        if unit.kind == "sequence":  # members that do not match: each file on its own,
            rows = [row for member in unit.members for row in describe(source, member)]
            for i, row in enumerate(rows):  # still one unit, so unchanged files stay unread
                row["unit"], row["signature"] = unit.path, unit.signature if i == 0 else None
            return rows
        if unit.kind == "store":
            entry = Entry("container", "error", {"count": 0}, {"error": reason}, "", unit.name)
            return [_row(source, unit, entry, True, reason)]
        return [_row(source, unit, raw_entry(unit, reason), True, reason)]
    entries[0].text = f"{unit.name} {entries[0].text}"
    return [_row(source, unit, e, i == 0, None) for i, e in enumerate(entries)]


def register(
    source: DirectorySource, progress: bool = False, only: set[str] | None = None
) -> Report:
    """Index the folder (every unit, or those whose path is in ``only`` plus their folders);
    ``progress`` shows a bar on stderr."""
    from tqdm import tqdm

    began = time.monotonic()
    report = Report()
    units = list(scan(source.root, source.readers))
    with source.engine.connect() as conn:
        known = signatures(conn, source.id)
    found = {u.path: u for u in units}
    todo = [u for u in units if known.get(u.path) != u.signature]
    removed = [path for path in known if path not in found]
    report.unchanged = len(units) - len(todo)
    bar = tqdm(
        total=len(todo),
        desc=f"registering {os.path.basename(source.root) or source.root}",
        unit="file",
        disable=not progress or not todo,
        leave=True,
    )
    try:
        for i in range(0, len(todo), BATCH):
            batch = todo[i : i + BATCH]
            rows = []
            for unit in batch:
                unit_rows = describe(source, unit)
                rows.extend(unit_rows)
                (report.changed if unit.path in known else report.added).append(unit.path)
                if unit_rows and unit_rows[0]["error"] and unit.kind != "refused":
                    report.unreadable.append(unit.path)
                bar.update(1)
            units_gone = [u.path for u in batch]
            # a sequence that split up leaves rows under its members' names too
            units_gone += [m.path for u in batch for m in u.members]
            with source.engine.begin() as conn:
                delete_units(conn, source.id, units_gone)
                insert_rows(conn, source.id, rows)
    finally:
        bar.close()
    if removed:
        with source.engine.begin() as conn:
            delete_units(conn, source.id, removed)
        report.removed = removed
    with source.engine.begin() as conn:
        conn.execute(
            sa.update(sources).where(sources.c.id == source.id).values(registered=time.time())
        )
    report.seconds = time.monotonic() - began
    return report

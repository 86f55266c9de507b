"""Walking the served folder: which *units* (files, numbered TIFF sequences, Zarr stores,
folders) it holds, each with a signature that changes when its content may have.

Nothing outside the folder is visited: a symbolic link whose target lies outside is listed
as refused and never opened; one inside is followed once (a loop is not walked twice).
Hidden names (starting with '.') are left out, as file browsers do.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

from .index import MAX_PATH
from .readers import Reader, Readers

log = logging.getLogger(__name__)
NUMBERED = re.compile(r"^(.*?)(\d+)(\.[A-Za-z0-9]+)$")
ZARR_METADATA = ("zarr.json", ".zgroup", ".zarray", ".zattrs")


@dataclass
class Unit:
    """What registration reads as one: ``path`` from the served folder, '/'-separated."""

    path: str
    kind: str  # 'directory', 'file', 'sequence', 'store', 'refused'
    files: list[str] = field(default_factory=list)  # '/'-separated, from the served folder
    reader: Reader | None = None
    size: int = 0
    mtime: float = 0.0
    signature: str = ""
    reason: str = ""
    members: list[Unit] = field(default_factory=list)  # a sequence's files, as units

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""


def inside(root: str, real: str) -> bool:
    return os.path.commonpath((real, root)) == root


def escaping_link(root: str, folder: str) -> str | None:
    """The first link below ``folder`` whose target is outside ``root`` (as a path from
    ``folder``), or None."""
    for here, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = os.path.join(here, name)
            if os.path.islink(path) and not inside(root, os.path.realpath(path)):
                return os.path.relpath(path, folder)
    return None


def usable(name: str, rel: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        log.warning("skipping %r: its name is not UTF-8", rel)
        return False
    if len(rel) > MAX_PATH:
        log.warning(
            "skipping %r...: paths longer than %d characters are not served", rel[:80], MAX_PATH
        )
        return False
    return True


def scan(root: str, readers: Readers) -> Iterator[Unit]:
    """Every unit under ``root`` (a real path), folders before their contents."""
    seen = {root}
    stack = [("", root)]
    while stack:
        rel_dir, real_dir = stack.pop()
        try:
            entries = sorted(os.scandir(real_dir), key=lambda e: e.name)
        except OSError as err:
            log.warning("cannot list %s: %s", rel_dir or ".", err)
            continue
        numbered: dict[tuple, list[tuple[int, Unit]]] = {}
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.name.startswith(".") or not usable(entry.name, rel):
                continue
            real = os.path.realpath(entry.path)
            if entry.is_symlink() and not inside(root, real):
                yield Unit(
                    rel,
                    "refused",
                    reason="it links outside the served directory",
                    signature="refused",
                )
                continue
            try:
                st = os.stat(real)
            except OSError as err:
                yield Unit(
                    rel, "refused", reason=f"cannot be read: {err.strerror}", signature="refused"
                )
                continue
            if stat.S_ISDIR(st.st_mode):
                store = readers.for_name(entry.name, folder=True)
                if store is not None:
                    mtimes = [st.st_mtime_ns]
                    for meta in ZARR_METADATA:
                        with contextlib.suppress(OSError):
                            mtimes.append(os.stat(os.path.join(real, meta)).st_mtime_ns)
                    yield Unit(rel, "store", [rel], store, 0, st.st_mtime, f"store:{max(mtimes)}")
                    continue
                if real in seen:
                    continue
                seen.add(real)
                yield Unit(rel, "directory", signature="directory")
                stack.append((rel, real))
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # sockets, fifos, devices: nothing to read
            reader = readers.for_name(entry.name)
            unit = Unit(
                rel,
                "file",
                [rel],
                reader,
                st.st_size,
                st.st_mtime,
                f"{st.st_size}:{st.st_mtime_ns}",
            )
            m = NUMBERED.match(entry.name) if reader is not None and reader.sequences else None
            if m:
                key = (m.group(1), m.group(3).lower(), reader.name, len(m.group(2)))
                numbered.setdefault(key, []).append((int(m.group(2)), unit))
                continue
            yield unit
        for (prefix, suffix, _, _), members in numbered.items():
            if len(members) == 1:
                yield members[0][1]
                continue
            members.sort(key=lambda m: m[0])
            units = [u for _, u in members]
            name = prefix.rstrip("_-. ") or suffix.lstrip(".")
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if any(e.name == name for e in entries):
                rel += suffix
            yield Unit(
                rel,
                "sequence",
                [u.path for u in units],
                units[0].reader,
                sum(u.size for u in units),
                max(u.mtime for u in units),
                "seq:"
                + hashlib.blake2b(
                    "|".join(u.signature for u in units).encode(), digest_size=12
                ).hexdigest(),
                members=units,
            )

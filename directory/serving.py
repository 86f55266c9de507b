"""What ``bluebroker serve`` does with folders: ``serve directory PATH`` serves one at the
root; ``--mount NAME=directory:PATH`` serves one at ``/NAME`` beside the catalogs of runs;
``--watch`` keeps them registered as files come, change and go.

Other kinds of mounts are told apart by how their spec begins (``MOUNT_KINDS``): today a
legacy MongoDB database, ``--mount NAME=mongodb://HOST/DATABASE`` (bluebroker.catalog.mongo)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable

from bluebroker.catalog import Catalog, CatalogError

from .live import Watcher, announce
from .source import DirectorySource

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
MOUNT_FORMS = "NAME=directory:PATH or NAME=mongodb://HOST/DATABASE"


def _check_mongo(name: str, spec: str) -> None:
    from bluebroker.catalog.mongo import check_mongo

    check_mongo(name, spec)


def _mount_mongo(catalog: Catalog, name: str, spec: str) -> None:
    from bluebroker.catalog.mongo import mount_mongo

    source = mount_mongo(catalog, name, spec)
    print(f"{source} ({source.describe()})", flush=True)


# Mount kinds other than folders, by the start of their spec: (check name and spec before
# the catalog is opened, open and mount it).
MOUNT_KINDS: dict[
    str, tuple[Callable[[str, str], None], Callable[[Catalog, str, str], None]]
] = {
    "mongodb://": (_check_mongo, _mount_mongo),
    "mongodb+srv://": (_check_mongo, _mount_mongo),
}


def _other_kind(item: str) -> tuple[str, str, str] | None:
    """(name, spec, kind) of a ``--mount`` that is not a folder, else None."""
    name, _, spec = item.partition("=")
    kind = next((k for k in MOUNT_KINDS if spec.startswith(k)), None)
    return None if kind is None else (name, spec, kind)


def check_folders(source: list[str], mounts: list[str], watch: bool) -> list[tuple[str, str]]:
    """(name, folder) pairs from ``serve directory PATH`` and ``--mount`` options, checked
    before anything is opened; '' is the root."""
    out: list[tuple[str, str]] = []
    if source:
        if len(source) != 2 or source[0] != "directory":
            raise CatalogError(
                f"serve takes 'directory PATH' (e.g. bluebroker serve directory my_files/), "
                f"not {' '.join(source)!r:.100}"
            )
        out.append(("", source[1]))
    others = []
    for item in mounts:
        other = _other_kind(item)
        if other is not None:
            _check_name(other[0])
            MOUNT_KINDS[other[2]][0](other[0], other[1])
            others.append(other[0])
            continue
        name, sep, rest = item.partition("=")
        kind, sep2, path = rest.partition(":")
        if not sep or not sep2 or kind != "directory" or not path:
            raise CatalogError(
                f"--mount takes {MOUNT_FORMS} (e.g. files=directory:/data/lake), "
                f"not {item!r:.100}"
            )
        _check_name(name)
        out.append((name, path))
    names = [n for n, _ in out] + others
    if watch and not out:
        raise CatalogError("--watch watches served folders: give 'directory PATH' or --mount")
    if len(set(names)) != len(names):
        raise CatalogError("each mount needs its own name")
    for _, path in out:
        if not os.path.isdir(path):
            raise CatalogError(f"{path!r:.200} is not a folder; serve an existing folder")
    return out


def _check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise CatalogError(
            f"--mount name {name!r:.80} must be letters, digits, '_', '.', '-' "
            "(one path segment)"
        )


def mount_folders(
    catalog: Catalog,
    source: list[str],
    mounts: list[str],
    watch: bool = False,
    progress: bool = True,
) -> list[Watcher]:
    """Register and mount every folder (and other mount) asked for; returns the started
    watchers."""
    pairs = check_folders(source, mounts, watch)
    for item in mounts:
        other = _other_kind(item)
        if other is not None:
            MOUNT_KINDS[other[2]][1](catalog, other[0], other[1])
    watchers = []
    for name, path in pairs:
        src = DirectorySource(catalog, path, name)
        report = src.register(progress=progress and sys.stderr.isatty())
        announce(src, report)
        print(f"{src.root} at /{name}: {report}", flush=True)
        catalog.mount(name, src)
        if watch:
            watchers.append(Watcher(src).start())
    return watchers

"""What ``bluebroker serve`` does with folders: ``serve directory PATH`` serves one at the
root; ``--mount NAME=directory:PATH`` serves one at ``/NAME`` beside the catalogs of runs;
``--watch`` keeps them registered as files come, change and go."""

from __future__ import annotations

import os
import re
import sys

from bluebroker.catalog import Catalog, CatalogError

from .live import Watcher, announce
from .source import DirectorySource

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")


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
    for item in mounts:
        name, sep, rest = item.partition("=")
        kind, sep2, path = rest.partition(":")
        if not sep or not sep2 or kind != "directory" or not path:
            raise CatalogError(
                f"--mount takes NAME=directory:PATH (e.g. files=directory:/data/lake), "
                f"not {item!r:.100}"
            )
        if not NAME.fullmatch(name):
            raise CatalogError(
                f"--mount name {name!r:.80} must be letters, digits, '_', '.', '-' "
                "(one path segment)"
            )
        out.append((name, path))
    names = [n for n, _ in out]
    if watch and not out:
        raise CatalogError("--watch watches served folders: give 'directory PATH' or --mount")
    if len(set(names)) != len(names):
        raise CatalogError("each mounted folder needs its own name")
    for _, path in out:
        if not os.path.isdir(path):
            raise CatalogError(f"{path!r:.200} is not a folder; serve an existing folder")
    return out


def mount_folders(
    catalog: Catalog,
    source: list[str],
    mounts: list[str],
    watch: bool = False,
    progress: bool = True,
) -> list[Watcher]:
    """Register and mount every folder asked for; returns the started watchers."""
    pairs = check_folders(source, mounts, watch)
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

"""Data roots: the only folders whose files the catalog opens.

Documents name detector files (a resource's root and resource_path, a stream_resource's URI,
a handler's template), and anyone who may send documents chooses those names. So every path
is resolved (symbolic links followed, ``..`` removed) and must then lie inside one of the
catalog's data roots, both when a document arrives (it is refused, saying why) and when a
file is about to be opened (the read is refused, in the same words whether the file exists
or not, so that nobody learns about files elsewhere).

Which roots a catalog has:

- the folders given as ``open_catalog(uri, data_roots=[...])`` (``--data-root DIR``);
- given none, a SQLite catalog file's own folder: the embedded default keeps its detector
  files beside it (``bluebroker demo`` writes under ``bluebroker-data/``);
- given none, a PostgreSQL catalog (or an in-memory SQLite one) has no roots at all: it keeps
  runs, and refuses documents that point at files, naming ``--data-root``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlparse

import sqlalchemy as sa

from .errors import CatalogError, ExternalDataError

FIX = "the catalog's operator can allow a folder with --data-root DIR (open_catalog data_roots=)"


class OutsideDataRoots(ExternalDataError, PermissionError):
    """A path outside every data root: refused before anything is opened."""


def configure(uri: str, given: Iterable[str | os.PathLike] | None) -> tuple[str, ...]:
    """The catalog's data roots as real paths (see the module's docstring for the default)."""
    if given is None:
        try:
            url = sa.engine.make_url(uri)
        except Exception:  # the engine says what is wrong with the URI
            return ()
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return (os.path.dirname(os.path.realpath(url.database)),)
        return ()
    if isinstance(given, str | os.PathLike):
        given = [given]
    roots = []
    for root in given:
        real = os.path.realpath(os.fspath(root))
        if not os.path.isdir(real):
            raise CatalogError(
                f"data root {os.fspath(root)!r} is not a folder; give existing folders"
            )
        roots.append(real)
    return tuple(dict.fromkeys(roots))


def check(roots: tuple[str, ...], path: Any, what: str = "file") -> str:
    """The real path of ``path`` if it lies inside one of ``roots``; else
    :class:`OutsideDataRoots`, whose message never depends on whether the file exists."""
    shown = repr(path) if len(repr(path)) <= 300 else repr(path)[:297] + "..."
    if not roots:
        raise OutsideDataRoots(
            f"{what} {shown}: this catalog has no data roots, so it reads no detector files; {FIX}"
        )
    try:
        text = os.fsdecode(path)
        real = os.path.realpath(text) if os.path.isabs(text) else None
    except (TypeError, ValueError):  # not a path at all, or a NUL byte in it
        real = None
    if real is not None:
        for root in roots:
            if os.path.commonpath((real, root)) == root:
                return real
    raise OutsideDataRoots(f"{what} {shown} is outside the data roots; {FIX}")


def resource_file(doc: dict, root_map: dict[str, str]) -> str:
    """The file a resource document names: its ``root`` (translated by ``root_map``, where
    the files moved) joined with its ``resource_path``."""
    root = doc.get("root", "")
    root = root_map.get(root, root)
    return os.path.join(root, doc["resource_path"]) if root else doc["resource_path"]


def stream_file(uri: str, root_map: dict[str, str]) -> str:
    """The local file a stream_resource's URI names (``file://host/path``, or a bare path),
    with a ``root_map`` prefix applied. Other schemes come back as they are (and are not
    absolute paths, so :func:`check` refuses them)."""
    parsed = urlparse(uri)
    path = unquote(parsed.path) if parsed.scheme in ("file", "") else uri
    for old, new in root_map.items():
        if path.startswith(old.rstrip("/") + "/"):
            return new.rstrip("/") + path[len(old.rstrip("/")) :]
    return path

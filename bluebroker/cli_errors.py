"""Operator mistakes as one line: a catalog URI that is malformed, names a missing database
or a wrong host/port, a SQLite file that is not a catalog, a missing extra.

The command line checks a catalog URI before it opens anything, so a typo neither creates a
stray file nor ends in a driver's traceback, and it says which of the commands it runs made
a new, empty catalog. Messages never show a password (``hide_secrets``).
"""

from __future__ import annotations

import errno
import os
import re
import socket
import sqlite3
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from bluebroker.catalog import Catalog

SQLITE_FORM = "sqlite:///relative/path/catalog.db or sqlite:////absolute/path/catalog.db"
POSTGRES_FORM = "postgresql://user@host:5432/database"
FORMS = f"use {SQLITE_FORM}, or {POSTGRES_FORM}"
PASSWORD = re.compile(r"(://[^/@:\s]*:)([^@/\s]+)(@)")


class OperatorError(Exception):
    """Something the operator asked for cannot be done as asked; the message says what to
    change. The command line prints it as one ``error:`` line and exits 2."""


def hide_password(uri: str) -> str:
    return PASSWORD.sub(r"\1***\3", uri)


def secrets_of(values: Iterable[object]) -> list[str]:
    """Passwords inside URIs among ``values``, to be hidden from every message."""
    found = []
    for value in values:
        if isinstance(value, str):
            found += [m.group(2) for m in PASSWORD.finditer(value)]
    return found


def hide_secrets(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


@dataclass(frozen=True)
class Target:
    """A catalog URI that parsed: ``shown`` is safe to print, ``sqlite_file`` is the
    file of a SQLite catalog (None for PostgreSQL)."""

    uri: str
    shown: str
    sqlite_file: Path | None
    server: str | None = None  # PostgreSQL's host:port


def check_uri(uri: str) -> Target:
    """Refuse a catalog URI that cannot be right, before anything is opened or created."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from bluebroker.catalog.engine import normalize_uri

    shown = hide_password(uri)
    if not uri.strip():
        raise OperatorError(f"the catalog URI is empty; {FORMS}")
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", uri)
    known = scheme and scheme.group(1).lower().split("+")[0] in ("sqlite", "postgresql", "postgres")
    if "://" not in uri and known:
        raise OperatorError(f"{shown!r} is not a catalog URI (the scheme needs '://'); {FORMS}")
    try:
        url = make_url(normalize_uri(uri))
    except (ArgumentError, ValueError) as err:
        reason = "its port is not a number" if "int()" in str(err) else str(err)
        raise OperatorError(f"{shown!r} is not a valid catalog URI ({reason}); {FORMS}") from None
    backend, driver = url.get_backend_name(), url.drivername.partition("+")[2]
    if backend not in ("sqlite", "postgresql"):
        raise OperatorError(
            f"unsupported catalog URI {shown!r}: catalogs live in SQLite or PostgreSQL; {FORMS}"
        )
    if backend == "postgresql":
        if driver != "psycopg":
            raise OperatorError(
                f"{shown!r}: bluebroker reaches PostgreSQL through psycopg 3; write "
                f"{POSTGRES_FORM} without '+{driver}'"
            )
        return Target(uri, shown, None, f"{url.host or 'localhost'}:{url.port or 5432}")
    if driver not in ("", "pysqlite"):
        raise OperatorError(f"{shown!r}: write sqlite:///path/catalog.db without '+{driver}'")
    if not url.database or url.database == ":memory:":
        raise OperatorError(
            f"{shown!r} names no file (an in-memory catalog would vanish on exit); {FORMS}"
        )
    path = Path(url.database)
    if path.is_dir():
        raise OperatorError(
            f"{path} is a folder; name the catalog file in it, e.g. sqlite:///{path / 'catalog.db'}"
        )
    above = next((p for p in path.absolute().parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise OperatorError(f"{above} is a file, so it cannot hold the catalog {path}")
    return Target(uri, shown, path)


def check_listen(host: str, port: int) -> None:
    """Refuse a port in use or a host that is not this machine's, before a catalog is opened
    (a refused ``serve`` should not leave a new catalog behind)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except socket.gaierror:
            raise OperatorError(f"--host {host!r} is not a known address") from None
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise OperatorError(
                    f"port {port} on {host} is in use; pass --port with a free one"
                ) from None
            if err.errno == errno.EACCES:
                raise OperatorError(
                    f"port {port} is reserved for root here; pass --port with one above 1023"
                ) from None
            raise OperatorError(
                f"cannot listen on {host}:{port} ({err.strerror}); --host takes an address of "
                "this machine (127.0.0.1, or 0.0.0.0 for all)"
            ) from None


def _sqlite_is_new(path: Path) -> bool:
    """True for a missing file or a SQLite file without tables; refuses a file that is not
    a SQLite database, without changing it (read-only)."""
    if not path.exists() or path.stat().st_size == 0:
        return True
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
        try:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        if "not a database" in str(err):
            raise OperatorError(
                f"{path} is not a SQLite database; give --catalog a catalog file, or a new "
                "path to make one"
            ) from None
        raise OperatorError(f"cannot read {path} ({err}); check its permissions") from None
    return tables == 0


@contextmanager
def reaching(target: Target) -> Iterator[None]:
    """Turn a database that cannot be reached or opened into one line about ``target``."""
    import sqlalchemy.exc as sa_exc

    try:
        yield
    except sa_exc.DBAPIError as err:
        raise OperatorError(
            f"cannot open the catalog {target.shown}: {database_reason(err, target.server)}"
        ) from None


def open_for_use(
    uri: str,
    *,
    data_roots: list[Path] | None = None,
    root_map: dict[str, str] | None = None,
) -> Catalog:
    """Open a catalog for ``serve``, ``ingest`` and ``demo``: a new SQLite catalog is made
    (and said so on stderr); an existing file that is not a bluebroker catalog is refused
    rather than quietly given catalog tables; PostgreSQL must have been initialized."""
    from bluebroker.catalog import open_catalog

    target = check_uri(uri)
    new = target.sqlite_file is not None and _sqlite_is_new(target.sqlite_file)
    options: dict[str, object] = {"create": new}
    if root_map:
        options["root_map"] = root_map
    if data_roots:  # none given: the catalog's default (a SQLite file's own folder)
        options["data_roots"] = [str(root) for root in data_roots]
    with reaching(target):
        catalog = open_catalog(uri, **options)
    if new:
        print(f"created a new empty catalog at {target.sqlite_file}", file=sys.stderr, flush=True)
    return catalog


def existing_sqlite(target: Target, init_command: str) -> None:
    """``catalog info`` and ``upgrade`` read a catalog; they never create a file."""
    path = target.sqlite_file
    if path is not None and (not path.exists() or _sqlite_is_new(path)):
        what = "no such file" if not path.exists() else "an empty database"
        raise OperatorError(f"no catalog at {path} ({what}); make one with: {init_command}")


def database_reason(err: BaseException, server: str | None = None) -> str:
    """What a database driver's error means for the operator, in one line."""
    raw = str(getattr(err, "orig", None) or err)
    text = " ".join(raw.split())
    where = re.search(r'server at "([^"]+)", port (\d+)', text)
    at = f"{where.group(1)}:{where.group(2)}" if where else server or "the server"
    waited = os.environ.get("PGCONNECT_TIMEOUT")
    within = f"within {waited} s" if waited else "in time"
    rules = (
        (
            r'database "([^"]+)" does not exist',
            lambda m: (
                f'PostgreSQL at {at} has no database "{m[1]}"; create it (createdb '
                f"{m[1]}) or fix the database name in the URI"
            ),
        ),
        (
            r'role "([^"]+)" does not exist',
            lambda m: f'PostgreSQL at {at} has no user "{m[1]}"; fix the user in the URI',
        ),
        (
            r'password authentication failed for user "([^"]+)"',
            lambda m: (
                f'PostgreSQL at {at} refused the password of "{m[1]}"; fix the URI\'s '
                "password or ~/.pgpass"
            ),
        ),
        (
            r"no pg_hba\.conf entry",
            lambda m: f"PostgreSQL at {at} does not let this host in (pg_hba.conf)",
        ),
        (
            r"Connection refused",
            lambda m: (
                f"nothing answers at {at} (connection refused); check the host and port in "
                "the URI and that PostgreSQL is running"
            ),
        ),
        (
            r"(failed to resolve host|could not translate host name) ['\"]?([^'\" ]+)",
            lambda m: f"the host {m[2]!r} is not known; fix the host in the URI",
        ),
        (
            r"timeout expired|timed out",
            lambda m: f"no answer from {at} {within}; check the host and port in the URI",
        ),
        (
            r"unable to open database file",
            lambda m: "SQLite cannot open the file; check that its folder exists and is writable",
        ),
        (
            r"file is not a database",
            lambda m: "the file is not a SQLite database; give a catalog file or a new path",
        ),
        (
            r"attempt to write a readonly database",
            lambda m: "the SQLite file is read-only here; check its permissions",
        ),
        (
            r"database or disk is full|No space left on device",
            lambda m: "the disk holding the catalog is full; free some space",
        ),
        (
            r"database is locked",
            lambda m: "another process holds the SQLite catalog locked; try again later",
        ),
    )
    for pattern, say in rules:
        match = re.search(pattern, text)
        if match:
            return say(match)
    return text.split(" (Background on this error")[0][:300]


def explain(err: BaseException) -> str | None:
    """The one line for a known operator mistake, or None for what must be a bug."""
    if isinstance(err, OperatorError):
        return str(err)
    if isinstance(err, ModuleNotFoundError) and err.name:
        if err.name.split(".")[0] in ("bluebroker", "databroker"):
            return None  # one of ours: a bug, not an install
        return (
            f"this command needs the Python package {err.name!r}, which is not installed; "
            "pip install 'bluebroker[all]'"
        )
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.filename}: {(err.strerror or str(err)).lower()}"
    module = type(err).__module__.split(".")[0]
    # The database went away or refused on the way (not a constraint or a statement: those
    # would be bugs, and keep their traceback).
    if module == "sqlalchemy" and type(err).__name__ in ("OperationalError", "InterfaceError"):
        return f"the catalog database failed: {database_reason(err)}"
    if module == "kafka":
        if type(err).__name__ == "KafkaConfigurationError":
            return f"Kafka: {err}; check --consumer-config"
        return f"Kafka: {err}; check --bootstrap-servers and that the broker is running"
    try:
        from bluebroker.catalog import CatalogError
        from bluebroker.ingest.errors import DocumentError
        from bluebroker.ingest.files import FileFormatError
    except ImportError:  # a client-only install: none of these can have been raised
        return None
    if isinstance(err, CatalogError | DocumentError | FileFormatError):
        return str(err)
    return None

"""A real MongoDB-protocol server for the legacy tests, started by the tests themselves.

MongoDB's own ``mongod`` cannot be installed on the project's machines (its downloads are not
on the package registries they reach), so the tests run SecantusDB's server (``secantusd-py``
from the ``secantusdb`` wheel on PyPI): MongoDB's wire protocol over a real socket, on
WiredTiger storage, with real indexes, sorts, cursors and duplicate-key errors. pymongo talks
to it exactly as it talks to mongod. With ``BLUEBROKER_TEST_MONGODB_URI`` set (e.g.
``mongodb://127.0.0.1:27017``) the same tests run against that server instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "BLUEBROKER_TEST_MONGODB_URI"
STARTUP_SECONDS = 60


class MongoServerError(RuntimeError):
    """The test MongoDB-protocol server could not be started."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mongo_server(storage: Path) -> Iterator[str]:
    """The URI (no database) of a MongoDB-protocol server: ``$BLUEBROKER_TEST_MONGODB_URI``
    when set, else a ``secantusd-py`` process on a free loopback port, storing under
    ``storage``, stopped afterwards. Ready when yielded: the server's own "listening" line is
    awaited, not a guessed delay."""
    given = os.environ.get(ENV)
    if given:
        yield given.rstrip("/")
        return
    binary = shutil.which("secantusd-py") or str(Path(os.sys.executable).parent / "secantusd-py")
    if not Path(binary).exists():
        raise MongoServerError("secantusd-py is not installed (pip install secantusdb)")
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(storage),
            "--standalone",
            "--log-level",
            "INFO",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = threading.Event()
    lines: list[str] = []

    def watch() -> None:  # reads the log to the end, so the pipe never fills
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "listening on" in line:
                ready.set()
        ready.set()  # the process ended

    threading.Thread(target=watch, daemon=True).start()
    try:
        if not ready.wait(STARTUP_SECONDS) or proc.poll() is not None:
            raise MongoServerError("secantusd-py did not start: " + "".join(lines)[-2000:])
        yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def with_database(uri: str, database: str) -> str:
    """``uri`` naming ``database`` (its query string kept)."""
    base, sep, query = uri.partition("?")
    base = base.rstrip("/")
    if base.count("/") > 2:  # already names a database: replace it
        base = base.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{query}" if sep else "")

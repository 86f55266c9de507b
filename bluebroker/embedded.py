"""A throwaway bluebroker in this process: a temporary SQLite catalog served over HTTP from a
background thread, removed at exit. It is what ``databroker.temp()`` and notebooks use so that
they need no set-up; it needs the server extra (``pip install bluebroker[server]``).

It lives beside the CLI, which also drives every room: the ``databroker`` facade itself only
speaks HTTP through ``bluebroker.client``.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from pathlib import Path


class EmbeddedServer:
    """Serve a fresh catalog at ``self.uri`` until :meth:`close` (or interpreter exit)."""

    def __init__(self, catalog_paths: tuple[str, ...] = (), api_key: str | None = None) -> None:
        try:
            from bluebroker.catalog import open_catalog
            from bluebroker.server.run import background_server
        except ImportError as err:
            raise ImportError(
                f"an embedded bluebroker needs the server extra ({err}); "
                "pip install 'bluebroker[server]'"
            ) from None
        self.directory = Path(tempfile.mkdtemp(prefix="bluebroker-temp-"))
        self.catalog = open_catalog(f"sqlite:///{self.directory}/catalog.db")
        for path in catalog_paths:  # visible (and empty) before the first run arrives
            self.catalog.create_catalog(path)
        self._serving = background_server(self.catalog, api_key=api_key)
        self.uri: str = self._serving.__enter__()
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._serving.__exit__(None, None, None)
        self.catalog.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<EmbeddedServer {self.uri} ({self.directory})>"

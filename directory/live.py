"""Live notices of a served folder: files added, changed and removed, in the catalog's
change log (scope ``folder``, one sequence per served folder), so subscribers of the
folder's containers hear of them through the same live route as runs."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from bluebroker.catalog.changes import Change, next_seq, statements

from .index import SCOPE
from .register import Report, register

if TYPE_CHECKING:
    from .source import DirectorySource

log = logging.getLogger(__name__)
MAX_NAMED = 100  # a registration changing more files than this sends one summary notice


def announce(source: DirectorySource, report: Report) -> list[Change]:
    """Record what ``report`` says changed and tell this process's subscribers."""
    kinds = [
        ("file-added", report.added),
        ("file-changed", report.changed),
        ("file-removed", report.removed),
    ]
    total = sum(len(paths) for _, paths in kinds)
    if not total:
        return []
    now = time.time()
    if total > MAX_NAMED:
        bodies = [("files-changed", {k.split("-")[1]: len(p) for k, p in kinds})]
    else:
        bodies = [(kind, {"path": path}) for kind, paths in kinds for path in paths]
    found = []
    with source.engine.begin() as conn:
        for kind, body in bodies:
            seq = next_seq(conn, SCOPE, source.id)
            change = Change(SCOPE, source.id, seq, kind, now, {"root": source.name, **body})
            for sql, params in statements(conn, change):
                conn.exec_driver_sql(sql, params)
            found.append(change)
    source.catalog.changes.publish(found)
    return found


class Watcher:
    """Registers the folder again whenever files in it change (watchfiles), and announces
    what changed. ``ready`` is set once the watch is in place."""

    def __init__(self, source: DirectorySource, debounce_ms: int = 200) -> None:
        self.source = source
        self.debounce_ms = debounce_ms
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"bluebroker-watch-{source.name or 'root'}", daemon=True
        )

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        import watchfiles

        watch = watchfiles.watch(
            self.source.root,
            stop_event=self._stop,
            debounce=self.debounce_ms,
            step=20,
            yield_on_timeout=True,
            rust_timeout=100,
            ignore_permission_denied=True,
        )
        for found in watch:
            self.ready.set()  # the first timeout: the watcher is running
            if not found:
                continue
            try:
                report = register(self.source)
                announce(self.source, report)
                log.info("%s: %s", self.source.root, report)
            except Exception:  # a database outage must not end watching
                log.exception("registering %s after a change failed", self.source.root)

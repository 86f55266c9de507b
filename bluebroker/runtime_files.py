"""Where a local server leaves its token for its own user's Python sessions, as Jupyter does.

``bluebroker serve`` and ``demo`` protect a laptop server with a random token. Printing it is
enough for a browser, but a scientist who types ``from_uri("http://127.0.0.1:8000")`` in
another terminal should not have to copy it: the server writes it to a file only its user can
read (0600, in a 0700 folder), and the client looks there for a server on this machine when it
was given no key. The file goes away when the server stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path


def runtime_dir() -> Path:
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "bluebroker" / "runtime"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "bluebroker"
    return Path.home() / ".local" / "share" / "bluebroker" / "runtime"


def _file(host: str, port: int) -> Path:
    safe = "".join(c if c.isalnum() or c in ".-" else "_" for c in host)
    return runtime_dir() / f"server-{safe}-{port}.json"


def write_token(host: str, port: int, token: str) -> Path | None:
    """Leave ``token`` for this user's clients of ``host:port``; None if it cannot be done
    safely (the token is still printed)."""
    folder = runtime_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if sys.platform != "win32" and (folder.stat().st_mode & 0o077):
            os.chmod(folder, 0o700)
        path = _file(host, port)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"host": host, "port": port, "token": token, "pid": os.getpid()}, out)
        return path
    except OSError:
        return None


def remove_token(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def find_token(host: str, port: int) -> str | None:
    """The token a running local server left for ``host:port`` (loopback only), if any."""
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        return None
    for candidate in {host, "127.0.0.1", "localhost"}:
        path = _file(candidate.strip("[]"), port)
        try:
            if sys.platform != "win32" and path.stat().st_mode & 0o077:
                continue  # readable by others: not ours to trust
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        pid = data.get("pid")
        if isinstance(pid, int) and not _alive(pid):
            continue
        token = data.get("token")
        if isinstance(token, str):
            return token
    return None


def _alive(pid: int) -> bool:
    if sys.platform == "win32":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

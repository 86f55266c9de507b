"""The real ``bluebroker`` console script in a subprocess, read line by line with deadlines, so
tests wait for what it prints (``serving ...``), never for a fixed time."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

BLUEBROKER = Path(sys.executable).with_name("bluebroker")


def run(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    """Run ``bluebroker ARGS`` to its end; stdout and stderr as text. A ``serve`` that names
    no port (nor a config file, which may) gets a free one: what a test expects must not
    depend on whether port 8000 happens to be free on this machine."""
    if args[:1] == ("serve",) and not {"--port", "--config", "--help"} & set(args):
        args = (*args, "--port", str(free_port()))
    return subprocess.run(
        [str(BLUEBROKER), *args], capture_output=True, text=True, timeout=timeout, **kwargs
    )


def wait_until_answering(url: str, timeout: float = 60) -> None:
    """``serve`` says "serving ..." just before uvicorn binds: poll /healthz until it
    answers (a readiness signal, not a guess at how long starting takes)."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{url}/healthz", timeout=5)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{url} did not answer within {timeout} s"
            time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    """``bluebroker ARGS`` in the background, stdout and stderr merged, read by a thread."""

    def __init__(self, *args: str, cwd: Path | None = None, env: dict | None = None) -> None:
        env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [str(BLUEBROKER), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd,
            env=env,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 120) -> str:
        """The first line (from here on) containing ``text``; fails if the process ends or
        the deadline passes first."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} within {timeout} s:\n{self.output}"
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            assert line is not None, f"ended before {text!r}:\n{self.output}"
            self.lines.append(line)
            if text in line:
                return line

    def finish(self, timeout: float = 30) -> tuple[int, list[str]]:
        """Wait for the end; the exit code and the lines printed since the last wait_for."""
        code = self.proc.wait(timeout=timeout)
        rest = []
        while (line := self._queue.get(timeout=timeout)) is not None:
            rest.append(line)
        self.lines += rest
        return code, rest

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

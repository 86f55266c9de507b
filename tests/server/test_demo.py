"""The README's main job, end to end: `bluebroker demo` serves while it acquires, and the
talk's example runs against it as written."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bluebroker.client import from_uri


def test_demo_serves_what_it_acquires(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("bluebroker")
    proc = subprocess.Popen(
        [
            str(exe),
            "demo",
            "--runs",
            "4",
            "--interval",
            "0",
            "--keep-serving",
            "--port",
            str(port),
            "--catalog",
            f"sqlite:///{tmp_path}/catalog.db",
            "--data-dir",
            str(tmp_path / "files"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        deadline = time.monotonic() + 120
        while "still serving" not in "".join(lines):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(lines)
            lines.append(line)
            assert time.monotonic() < deadline, "".join(lines)
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}" in output and "run 4:" in output
        c = from_uri(f"http://127.0.0.1:{port}")
        values = c["bmm"]["raw"].values().last()["primary"]["data"]["det1"][:5]
        assert values.dtype == np.float64 and 1 <= len(values) <= 5
        cam = c["bmm"]["raw"].values()[1]["primary"]["data"]["cam"]
        assert cam.shape == (5, 64, 64) and cam[4].shape == (64, 64)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

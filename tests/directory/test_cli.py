"""``bluebroker serve directory PATH`` and ``--mount NAME=directory:PATH``, the real command."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.processes import Running, free_port, run, wait_until_answering


def _serve(*args: str) -> tuple[Running, str]:
    port = free_port()
    server = Running("serve", *args, "--port", str(port), "--api-key", "secret")
    server.wait_for("serving")
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(url)
    return server, url


def test_serve_directory_then_restart_reads_nothing_again(tree, tmp_path):
    from bluebroker.client import from_uri

    root, values = tree
    uri = f"sqlite:///{tmp_path}/index.db"
    server, url = _serve("directory", str(root), "--catalog", uri)
    try:
        assert "11 added" in server.output and "1 unreadable" in server.output
        c = from_uri(url, api_key="secret")
        counts = c["scans"]["copper.nxs"]["entry"]["data"]["counts"]
        np.testing.assert_array_equal(counts[5:7, ::50], values["frames"][5:7, ::50])
    finally:
        server.interrupt()
        server.finish()
    server, url = _serve("directory", str(root), "--catalog", uri)
    try:
        line = server.wait_for("unchanged") if "unchanged" not in server.output else server.output
        assert "0 added, 0 changed, 0 removed, 11 unchanged" in line
    finally:
        server.interrupt()
        server.finish()


def test_mount_beside_runs_with_watch(tree, tmp_path):
    from bluebroker.client import from_uri

    root, _ = tree
    uri = f"sqlite:///{tmp_path}/index.db"
    server, url = _serve(
        "--catalog", uri, "--mount", f"lake={root}".replace("=", "=directory:"), "--watch"
    )
    try:
        c = from_uri(url, api_key="secret")
        assert "lake" in c
        updates = c["lake"].updates(start=1, timeout=60)
        pd.DataFrame({"x": [7]}).to_csv(root / "late.csv", index=False)
        assert next(u for u in updates if u.get("path") == "late.csv").type == "file-added"
        assert c["lake"]["late.csv"].read()["x"].tolist() == [7]
    finally:
        server.interrupt()
        server.finish()


def test_bad_folder_arguments_are_one_line_and_create_nothing(tmp_path):
    """What was typed wrong is said first, even when the port is taken too (it once depended
    on port 8000 being free)."""
    import socket

    uri = f"sqlite:///{tmp_path}/c.db"
    cases = [
        (["serve", "directory"], "serve takes 'directory PATH'"),
        (["serve", "folder", str(tmp_path)], "serve takes 'directory PATH'"),
        (["serve", "directory", str(tmp_path / "missing")], "is not a folder"),
        (["serve", "--mount", f"x={tmp_path}"], "--mount takes NAME=directory:PATH"),
        (["serve", "--mount", f"a/b=directory:{tmp_path}"], "one path segment"),
        (["serve", "--watch"], "--watch watches served folders"),
    ]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for args, words in cases:
            done = run(*args, "--catalog", uri, "--port", port)
            assert done.returncode == 2, done
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and words in lines[0], done.stderr
    assert not (tmp_path / "c.db").exists()

"""The default start of `bluebroker serve`: a random token, printed as a URL that works, and
left for its own user's Python sessions in a 0600 file, gone when the server stops."""

from __future__ import annotations

import os
import stat

import httpx
import pytest

from bluebroker.client import AuthenticationError, from_uri
from bluebroker.runtime_files import find_token, runtime_dir
from tests.processes import Running, free_port, wait_until_answering


def test_serve_prints_a_token_url_and_leaves_it_for_local_clients(tmp_path, monkeypatch):
    monkeypatch.delenv("BLUEBROKER_API_KEY")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    env = {k: v for k, v in os.environ.items() if k != "BLUEBROKER_API_KEY"}
    port = free_port()
    server = Running(
        "serve", "--port", str(port), "--catalog", f"sqlite:///{tmp_path}/c.db", env=env
    )
    try:
        line = server.wait_for("serving ")
        printed = line.split(" at ")[1].split()[0]
        base = f"http://127.0.0.1:{port}"
        assert printed.startswith(f"{base}/?token=")
        token = printed.split("token=")[1]
        wait_until_answering(base)
        denied = httpx.get(f"{base}/api/v1/metadata/")
        assert denied.status_code == 401 and f"{base}/?token=" in denied.json()["detail"]
        assert token not in denied.text
        with httpx.Client() as browser:  # the page keeps the token and drops it from the URL
            landed = browser.get(printed)
            assert landed.status_code == 303 and landed.headers["location"] == "/"
            assert "HttpOnly" in landed.headers["set-cookie"]
            assert browser.get(f"{base}/api/v1/auth/whoami").json()["kind"] == "owner"
        assert httpx.get(f"{base}/api/v1/metadata/", params={"token": token}).is_success
        assert list(from_uri(printed)) == []  # the printed URL, as it is
        # the token file: only its user may read it, and the client finds it by itself
        (left,) = runtime_dir().glob(f"server-*-{port}.json")
        assert stat.S_IMODE(left.stat().st_mode) == 0o600
        assert stat.S_IMODE(left.parent.stat().st_mode) == 0o700
        assert find_token("127.0.0.1", port) == token
        assert list(from_uri(base)) == []
        # a file others can read is not trusted
        os.chmod(left, 0o644)
        assert find_token("127.0.0.1", port) is None
        with pytest.raises(AuthenticationError):
            from_uri(base)
        os.chmod(left, 0o600)
    finally:
        server.interrupt()
        assert server.finish()[0] == 0
        server.close()
    assert not left.exists()
    assert find_token("127.0.0.1", port) is None

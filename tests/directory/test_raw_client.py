"""The Python client fetches raw array bytes over ``http.client`` (client/raw_http.py):
values equal h5py's, errors carry the server's words, a kept connection the server has
closed is replaced, and anything with a proxy or a sign-in flow stays with httpx."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest

from bluebroker.client.raw_http import RawArrays
from bluebroker.client.transport import BadRequestError, NotFoundError, _ssl_context

h5py = pytest.importorskip("h5py")


def test_slices_come_by_http_client_equal_and_writable(client, tree):
    c, _ = client
    _, values = tree
    counts = c["files"]["scans"]["copper.nxs"]["entry"]["data"]["counts"]
    transport = counts._transport
    got = counts[17:123, 5:290]
    assert transport._raw._all, "the slice did not come through http.client"
    np.testing.assert_array_equal(got, values["frames"][17:123, 5:290])
    assert got.flags.writeable
    got[0, 0] = -1  # a buffer of its own, not the server's or another read's
    np.testing.assert_array_equal(counts[17:18, 5:6], values["frames"][17:18, 5:6])
    for _ in range(3):  # one kept connection, reused
        np.testing.assert_array_equal(counts[-1], values["frames"][-1])
    assert len(transport._raw._all) == 1


def test_errors_carry_the_servers_words(client):
    c, _ = client
    counts = c["files"]["scans"]["copper.nxs"]["entry"]["data"]["counts"]
    with pytest.raises(BadRequestError, match="does not fit this array"):
        counts.read((slice(0, 1), slice(0, 1), 3))
    transport = counts._transport
    with pytest.raises(NotFoundError):
        transport.get_raw("array/full", ("files", "no-such-file"), {})


def _answer_two_connections(
    listener: socket.socket, body: bytes, served: list[int], cut_first: bool = False
) -> None:
    """Answer the first request of two connections in turn with ``body`` (keep-alive, as
    HTTP/1.1 allows), then close each without saying so, as a server does to an idle
    connection; with ``cut_first`` the first answer announces all of ``body`` but sends 10 bytes."""
    for i in range(2):
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            conn.sendall(head + (body[:10] if cut_first and i == 0 else body))
            served.append(1)


def test_a_connection_closed_by_the_server_is_replaced() -> None:
    body = np.arange(1000, dtype="<f8").tobytes()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        served: list[int] = []
        thread = threading.Thread(
            target=_answer_two_connections, args=(listener, body, served), daemon=True
        )
        thread.start()
        port = listener.getsockname()[1]
        raw = RawArrays(f"http://127.0.0.1:{port}/api/v1", 10, _ssl_context())
        for _ in range(2):  # the second finds its kept connection closed, and retries
            r = raw.get(f"http://127.0.0.1:{port}/api/v1/array/full/x", {"slice": "0"}, {})
            assert r.status_code == 200
            np.testing.assert_array_equal(r.content.view("<f8"), np.arange(1000))
        thread.join(10)
        raw.close()
    assert len(served) == 2


def test_proxies_and_sign_in_stay_with_httpx(monkeypatch) -> None:
    """Proxies are looked up once per client, as httpx does (its proxies are fixed when
    the client is made)."""

    def raw() -> RawArrays:
        return RawArrays("http://data.example.org:8000/api/v1", 10, _ssl_context())

    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    before = raw()
    assert before.usable(None)
    assert not before.usable(object())  # a sign-in flow (httpx's auth)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.org:3128")
    assert not raw().usable(None)
    assert before.usable(None)  # made before the proxy was set, as its httpx client was
    monkeypatch.setenv("NO_PROXY", "data.example.org")
    assert raw().usable(None)


def test_a_cut_body_is_an_error_and_the_next_read_works() -> None:
    import http.client

    body = np.arange(100, dtype="<i4").tobytes()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        thread = threading.Thread(
            target=_answer_two_connections, args=(listener, body, [], True), daemon=True
        )
        thread.start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/api/v1/array/full/x"
        raw = RawArrays(url, 10, _ssl_context())
        with pytest.raises(http.client.IncompleteRead):
            raw.get(url, {}, {})
        np.testing.assert_array_equal(raw.get(url, {}, {}).content.view("<i4"), np.arange(100))
        thread.join(10)
        raw.close()

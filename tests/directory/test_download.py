"""Whole files of a served folder, streamed as they lie: ``/api/v1/asset/bytes/{path}``."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from .conftest import outside_file


def test_every_kind_of_file_downloads_as_it_lies(client, tree):
    _, url = client
    root, _ = tree
    for rel in (
        "scans/copper.nxs",  # an HDF5 file (a container)
        "scan.csv",  # tables
        "scan.parquet",
        "images/flat.tif",  # an image
        "notes.txt",  # anything else
        "broken.h5",  # a file its reader could not read
    ):
        meta = httpx.get(f"{url}/api/v1/metadata/files/{rel}").json()["data"]
        link = meta["links"]["download"]
        assert link == f"{url}/api/v1/asset/bytes/files/{rel}"
        r = httpx.get(link)
        assert r.status_code == 200, (rel, r.text)
        on_disk = (root / rel).read_bytes()
        assert r.content == on_disk
        assert r.headers["content-length"] == str(len(on_disk))
        assert r.headers["content-type"] == "application/octet-stream"
        assert r.headers["accept-ranges"] == "bytes"
        name = rel.rsplit("/", 1)[-1]
        assert r.headers["content-disposition"].startswith(f'attachment; filename="{name}"')


def test_ranges(client, tree):
    _, url = client
    root, _ = tree
    data = (root / "scans" / "copper.nxs").read_bytes()
    link = f"{url}/api/v1/asset/bytes/files/scans/copper.nxs"
    size = len(data)
    for header, first, last in [
        ("bytes=0-7", 0, 7),
        ("bytes=100-", 100, size - 1),
        ("bytes=-16", size - 16, size - 1),
        (f"bytes=10-{size + 1000}", 10, size - 1),
    ]:
        r = httpx.get(link, headers={"Range": header})
        assert r.status_code == 206, (header, r.text)
        assert r.content == data[first : last + 1]
        assert r.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert r.headers["content-length"] == str(last - first + 1)
    assert httpx.get(link, headers={"Range": "bytes=0-3"}).content == b"\x89HDF"
    for bad in (f"bytes={size}-", "bytes=9-3", "lines=1-2", "bytes=-0", "bytes=x-"):
        r = httpx.get(link, headers={"Range": bad})
        assert r.status_code == 416, bad
        assert r.headers["content-range"] == f"bytes */{size}"
        assert "range" in r.json()["detail"].lower()
    r = httpx.get(link, headers={"Range": "bytes=0-1,5-6"})  # several: answered whole
    assert r.status_code == 200 and r.content == data


def test_what_is_not_one_file_says_so(client):
    _, url = client
    for rel in ("images", "images/det", "scans/copper.nxs/entry", "scans/copper.nxs/entry/data"):
        r = httpx.get(f"{url}/api/v1/asset/bytes/files/{rel}")
        assert r.status_code == 400, rel
        assert "not one whole file" in r.json()["detail"]
        meta = httpx.get(f"{url}/api/v1/metadata/files/{rel}").json()["data"]
        assert "download" not in meta["links"]
    assert httpx.get(f"{url}/api/v1/asset/bytes/files/nothing.h5").status_code == 404
    assert httpx.get(f"{url}/api/v1/asset/bytes/files/scan.csv/det").status_code == 400


def test_nothing_outside_the_folder(catalog, tree, tmp_path):
    from bluebroker.directory import DirectorySource
    from bluebroker.server.run import background_server

    root, _ = tree
    secret = outside_file(tmp_path)
    os.symlink(secret, root / "secret.txt")
    src = DirectorySource(catalog, root, "files")
    src.register()
    catalog.mount("files", src)
    with background_server(catalog) as url:
        for path in (
            "files/secret.txt",  # listed as refused
            "files/../secret.txt",
            "files/%2e%2e/secret.txt",
            "files/scans/..%2f..%2fsecret.txt",
        ):
            r = httpx.get(f"{url}/api/v1/asset/bytes/{path}")
            assert r.status_code in (400, 403, 404), (path, r.status_code)
            assert b"not for the web" not in r.content
        # A file swapped for a link out of the folder after registration is refused.
        os.remove(root / "notes.txt")
        os.symlink(secret, root / "notes.txt")
        r = httpx.get(f"{url}/api/v1/asset/bytes/files/notes.txt")
        assert r.status_code == 403
        assert "outside the served directory" in r.json()["detail"]
        assert b"not for the web" not in r.content


def test_a_file_larger_than_the_read_limit_streams_in_constant_memory(catalog, tmp_path):
    from bluebroker.client import from_uri
    from bluebroker.client.transport import ClientError
    from bluebroker.directory import DirectorySource
    from bluebroker.server.run import background_server

    root = tmp_path / "big"
    root.mkdir()
    name = 'frames "final"; v2\u00e9.raw'  # quotes, a semicolon, a non-ASCII letter
    size = 48 * 2**20 + 12345
    with open(root / name, "wb") as f:
        for i in range(size // 2**20 + 1):
            f.write(os.urandom(min(2**20, size - i * 2**20)))
    expected = hashlib.sha256((root / name).read_bytes()).hexdigest()
    src = DirectorySource(catalog, root, "files")
    src.register()
    catalog.mount("files", src)
    limit = 4 * 2**20
    with background_server(catalog, api_key="secret-key", max_read_bytes=limit) as url:
        link = f"{url}/api/v1/asset/bytes/files/{name}"
        headers = {"Authorization": "Apikey secret-key"}
        assert httpx.get(link).status_code == 401  # the data scope, as /array/full
        node = from_uri(url, api_key="secret-key")["files"][name]
        with pytest.raises(ClientError, match=r"HTTP 413"):
            node.read()  # a read held in memory is refused beyond the limit...
        tracemalloc.start()
        try:
            digest = hashlib.sha256()
            with httpx.stream("GET", link, headers=headers, timeout=120) as r:  # ...not this
                assert r.status_code == 200
                assert r.headers["content-length"] == str(size)
                for piece in r.iter_raw():
                    digest.update(piece)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert digest.hexdigest() == expected
        assert peak < limit, f"peak {peak:,} bytes while streaming {size:,}"
        disposition = r.headers["content-disposition"]
        plain = disposition.split('filename="', 1)[1].split('"', 1)[0]
        assert plain.isascii() and ";" not in plain and '"' not in plain
        assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == name
        r = httpx.get(link, headers={**headers, "Range": f"bytes={size - 10}-"})
        assert r.status_code == 206
        assert r.content == Path(root / name).read_bytes()[-10:]

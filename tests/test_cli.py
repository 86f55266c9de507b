"""The operator's command line: every known mistake is one ``error:`` line with a non-zero exit
status and no traceback, run through the real ``bluebroker`` console script."""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3

import pytest

from bluebroker import __version__
from bluebroker.cli import DATA_ROOT_HELP, main, parser
from bluebroker.cli_errors import explain
from tests.conftest import PG_URI, TEST_KEY
from tests.processes import free_port, run, wait_until_answering

KEY = {"Authorization": f"Bearer {TEST_KEY}"}


def assert_one_line(done, code: int, *words: str) -> str:
    """``done`` exited with ``code`` and said one line on stderr holding ``words``."""
    err = done.stderr
    assert done.returncode == code, err
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: "), err
    for word in words:
        assert word in err, err
    return err


def test_version():
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"bluebroker {__version__}"


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("sqlite:/bad", ["'sqlite:/bad' is not a catalog URI", "sqlite:////absolute"]),
        ("sqlite:", ["is not a catalog URI"]),
        ("postgresql:/db", ["is not a catalog URI", "postgresql://user@host"]),
        ("postgresql://u@h:abc/db", ["its port is not a number"]),
        ("mysql://u@h/db", ["unsupported catalog URI", "SQLite or PostgreSQL"]),
        ("mongodb://somewhere/db", ["unsupported catalog URI"]),
        ("sqlite+aiosqlite:///c.db", ["without '+aiosqlite'"]),
        ("postgresql+asyncpg://u@h/db", ["psycopg 3", "without '+asyncpg'"]),
        ("sqlite://", ["names no file"]),
        ("sqlite:///:memory:", ["names no file"]),
        ("", ["the catalog URI is empty"]),
    ],
)
def test_malformed_catalog_uri(uri, words, tmp_path):
    for action in ("info", "init"):
        assert_one_line(run("catalog", action, uri, cwd=tmp_path), 2, *words)
    assert_one_line(run("serve", "--catalog", uri, cwd=tmp_path), 2, *words)
    assert list(tmp_path.iterdir()) == []  # no stray file or folder


def test_catalog_info_on_a_missing_file_creates_nothing(tmp_path):
    uri = f"sqlite:///{tmp_path}/sub/catalog.db"
    for action in ("info", "upgrade"):
        assert_one_line(
            run("catalog", action, uri), 2, "no catalog at", "no such file", "catalog init"
        )
    assert list(tmp_path.iterdir()) == []
    bare = run("catalog", "info", "catalog.db", cwd=tmp_path)  # a bare path is a SQLite file
    assert_one_line(bare, 2, "no catalog at", "catalog.db")
    assert list(tmp_path.iterdir()) == []
    made = run("catalog", "init", uri)
    assert made.returncode == 0 and "schema version none ->" in made.stdout
    info = run("catalog", "info", uri)
    assert info.returncode == 0 and "schema version" in info.stdout


def test_sqlite_file_that_is_no_catalog(tmp_path):
    folder = tmp_path / "folder.db"
    folder.mkdir()
    assert_one_line(run("serve", "--catalog", f"sqlite:///{folder}"), 2, "is a folder")
    picture = tmp_path / "picture.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    done = run("serve", "--catalog", f"sqlite:///{picture}/catalog.db")
    assert_one_line(done, 2, f"{picture} is a file, so it cannot hold the catalog")
    for args in (["serve"], ["ingest", "kafka", "--bootstrap-servers", "h:1", "--topic", "t"]):
        done = run(*args, "--catalog", f"sqlite:///{picture}")
        assert_one_line(done, 2, "is not a SQLite database")
    assert_one_line(run("catalog", "info", f"sqlite:///{picture}"), 2, "not a SQLite database")
    # Someone else's SQLite database is refused, not given catalog tables.
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (text)")
    assert_one_line(run("serve", "--catalog", f"sqlite:///{other}"), 2, "has no bluebroker catalog")
    with sqlite3.connect(other) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("notes",)]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_sqlite_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        done = run("serve", "--catalog", f"sqlite:///{locked}/catalog.db")
        assert_one_line(done, 2, f"{locked}/catalog.db", "SQLite cannot open the file")
    finally:
        locked.chmod(0o700)


@pytest.fixture
def postgresql(postgresql_available):
    if not postgresql_available:
        pytest.skip(f"PostgreSQL at {PG_URI} is unreachable")
    return PG_URI.rsplit("/", 1)[0]  # postgresql://user@host:port


def test_postgresql_mistakes(postgresql):
    server = postgresql
    assert_one_line(
        run("catalog", "info", f"{server}/no_such_db"),
        2,
        'has no database "no_such_db"',
        "createdb no_such_db",
    )
    host = server.split("@", 1)[1].split(":")[0]
    assert_one_line(
        run("catalog", "info", f"postgresql://no_such_user@{host}/test"),
        2,
        'has no user "no_such_user"',
    )
    port = free_port()
    err = assert_one_line(
        run("serve", "--catalog", f"postgresql://postgres:s3cret-pw@127.0.0.1:{port}/test"),
        2,
        f"127.0.0.1:{port}",
        "connection refused",
        "postgres:***@",
    )
    assert "s3cret-pw" not in err
    assert_one_line(
        run("catalog", "info", "postgresql://postgres@no-such-host.invalid/test"),
        2,
        "'no-such-host.invalid' is not known",
    )


def test_kafka_secrets_are_hidden():
    assert_one_line(
        run(
            *("serve", "--kafka", "h:1", "--topic", "hunter2x[", "--catalog", "c.db"),
            *("--consumer-config", "sasl_plain_password=hunter2x"),
        ),
        2,
        "--topic '***[' is not a valid regular expression",
    )


def test_postgresql_without_a_catalog_names_init(postgresql_uri):
    err = assert_one_line(run("serve", "--catalog", postgresql_uri), 2, "has no bluebroker catalog")
    assert "bluebroker catalog init" in err


def test_usage_mistakes_are_one_line(tmp_path):
    cases = [
        (["serve", "--port", "99999"], "argument --port"),
        (["serve", "--port", "eighty"], "not a whole number from 1 to 65535"),
        (["demo", "--runs", "0"], "not a whole number of 1 or more"),
        (["demo", "--interval", "-1"], "not a number from 0 to 86400"),
        (["demo", "--interval", "nan"], "not a number from 0 to 86400"),
        (["demo", "--interval", "1e308"], "not a number from 0 to 86400"),
        (["serve", "--live-queue-limit", "0"], "--live-queue-limit"),
        (["serve", "--data-root", str(tmp_path / "nope")], "is not an existing folder"),
        (["serve", "--topic", "x"], "--topic is for --kafka"),
        (["serve", "--kafka", "localhost"], "is not HOST:PORT"),
        (["serve", "--kafka", "h:1", "--topic", "t", "--consumer-config", "x"], "KEY=VALUE"),
        (["serve", "--root-map", "/a"], "OLD=NEW"),
        (
            ["ingest", "kafka", "--bootstrap-servers", "h:x", "--topic", "t", "--catalog", "c"],
            "is not HOST:PORT",
        ),
        (["serve", "--api-key", ""], "the API key (--api-key or $BLUEBROKER_API_KEY) is empty"),
        (
            ["ingest", "kafka", "--bootstrap-servers", "h:1", "--topic", "a[", "--catalog", "c"],
            "is not a valid regular expression",
        ),
        (
            ["serve", "--kafka", "h:1", "--topic", "t", "--catalog-path-template", "{x}/raw"],
            "--catalog-path-template",
        ),
        (
            [
                "serve",
                "--kafka",
                "h:1",
                "--topic",
                "t",
                "--consumer-config",
                "enable_auto_commit=true",
            ],
            "enable_auto_commit",
        ),
        (
            [
                "ingest",
                "kafka",
                "--bootstrap-servers",
                "h:1",
                "--topic",
                "bluebroker.dead-letters",
                "--catalog",
                "c",
            ],
            "is the dead-letter topic",
        ),
        ([], "required: COMMAND"),
        (["bogus"], "invalid choice"),
        (["ingest", "file", "--catalog", "sqlite:///x.db"], "PATH"),
    ]
    for args, words in cases:
        done = run(*args, cwd=tmp_path)
        assert_one_line(done, 2, words)
    assert list(tmp_path.iterdir()) == []


def test_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("serve", "--port", str(port), "--catalog", f"sqlite:///{tmp_path}/c.db")
        assert_one_line(done, 2, f"port {port}", "--port")


def test_debug_shows_the_traceback():
    done = run("--debug", "catalog", "info", "sqlite:/bad")
    assert done.returncode == 1 and "Traceback" in done.stderr
    assert "OperatorError" in done.stderr


def test_a_bug_still_shows_its_traceback(monkeypatch):
    """Only known operator mistakes are turned into a line; anything else is a bug."""
    import sqlalchemy.exc

    assert explain(RuntimeError("a bug")) is None
    assert explain(KeyError("x")) is None
    assert explain(ModuleNotFoundError("no", name="bluebroker.nowhere")) is None
    clash = sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
    assert explain(clash) is None  # a statement the catalog got wrong: a bug
    full = sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))
    assert (
        explain(full)
        == "the catalog database failed: the disk holding the catalog is full; free some space"
    )

    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr("bluebroker.cli_commands.cmd_catalog", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["catalog", "info", "sqlite:///x.db"])


def _options(p: argparse.ArgumentParser, prog: str = "bluebroker"):
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{prog} {name}")
        elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
            yield prog, action


def test_every_option_has_help():
    options = list(_options(parser()))
    assert len(options) > 35
    missing = [f"{prog} {action.dest}" for prog, action in options if not action.help]
    assert missing == []
    data_roots = [prog for prog, action in options if action.dest == "data_root"]
    assert sorted(data_roots) == [
        "bluebroker demo",
        "bluebroker ingest file",
        "bluebroker ingest kafka",
        "bluebroker ingest mongo",
        "bluebroker serve",
    ]
    done = run("serve", "--help")
    assert done.returncode == 0 and DATA_ROOT_HELP in " ".join(done.stdout.split())


def test_a_silent_database_server_is_given_up_on():
    """A host that takes the connection and never answers: PGCONNECT_TIMEOUT, not minutes."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        done = run(
            "catalog",
            "info",
            f"postgresql://postgres@127.0.0.1:{port}/test",
            env={**os.environ, "PGCONNECT_TIMEOUT": "2"},
            timeout=30,
        )
    assert_one_line(done, 2, f"no answer from 127.0.0.1:{port} within 2 s")


@pytest.fixture
def detector_run(RE, recorder, tmp_path):
    """A run whose HDF5 detector file lies in tmp_path/det, outside its catalog's folder
    (tmp_path/cat): readable only with --data-root. Returns (uri, det folder, frames, docs)."""
    from bluesky.plans import count

    from bluebroker.catalog import open_catalog
    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.simulated import HDF5Camera

    det = tmp_path / "det"
    det.mkdir()
    uri = f"sqlite:///{tmp_path}/cat/catalog.db"
    RE.subscribe(CatalogWriter(open_catalog(uri, data_roots=[det]), "bmm/raw"))
    RE.subscribe(recorder)
    cam = HDF5Camera("cam", det, shape=(3, 4))
    (uid,) = RE(count([cam], num=2))
    return uri, det, uid, cam.frames, list(recorder)


def test_data_root_for_serve(detector_run):
    import httpx

    from tests.processes import Running

    uri, det, uid, frames, _ = detector_run
    for roots, status in (([], 403), (["--data-root", str(det)], 200)):
        server = Running("serve", "--port", str(free_port()), "--catalog", uri, *roots)
        try:
            url = server.wait_for("serving ").split(" at ")[1].split()[0]
            wait_until_answering(url)
            got = httpx.get(
                f"{url}/api/v1/array/full/bmm/raw/{uid}/primary/data/cam", headers=KEY
            )
            assert got.status_code == status, got.text
            if status == 200:
                assert got.json() == [frame.tolist() for frame in frames]
            else:
                assert "outside the data roots" in got.text
        finally:
            server.interrupt()
            assert server.finish()[0] == 0
            server.close()


def test_data_root_for_ingest_file(detector_run, tmp_path):
    import json

    _, det, _, _, docs = detector_run
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(pair, default=lambda a: a.tolist()) + "\n" for pair in docs))
    refused = run("ingest", "file", str(path), "-q", "--catalog", f"sqlite:///{tmp_path}/a/c.db")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "refused docs.jsonl:" in refused.stderr and "--data-root" in refused.stderr
    taken = run(
        *("ingest", "file", str(path), "-q", "--data-root", str(det)),
        *("--catalog", f"sqlite:///{tmp_path}/b/c.db"),
    )
    assert taken.returncode == 0, taken.stderr
    assert f"{len(docs)} documents written, 0 already present, 0 refused" in taken.stdout


def test_serving_to_other_machines_needs_authentication_chosen_on_purpose(tmp_path):
    """A random token is for one person on one machine: on 0.0.0.0 `serve` refuses to start
    without --api-key or --public, in one line naming them; --public starts, and says so."""
    import httpx

    from tests.processes import Running

    no_key = {k: v for k, v in os.environ.items() if k != "BLUEBROKER_API_KEY"}
    refused = run(
        *("serve", "--host", "0.0.0.0", "--catalog", f"sqlite:///{tmp_path}/c.db"), env=no_key
    )
    assert_one_line(refused, 2, "add --api-key KEY")
    assert "--public" in refused.stderr and not (tmp_path / "c.db").exists()
    server = Running(
        *("serve", "--host", "0.0.0.0", "--port", str(free_port()), "--public"),
        *("--catalog", f"sqlite:///{tmp_path}/c.db"),
        env=no_key,
    )
    try:
        port = server.wait_for("API docs").split(" at ")[1].split()[0].rsplit(":", 1)[1]
        wait_until_answering(f"http://127.0.0.1:{port.split('/')[0]}")
        assert "warning: serving on 0.0.0.0 with --public" in server.output
        assert httpx.get(f"http://127.0.0.1:{port.split('/')[0]}/api/v1/metadata/").is_success
    finally:
        server.interrupt()
        assert server.finish()[0] == 0
        server.close()
    empty = run(
        "serve", "--catalog", "c.db", cwd=tmp_path, env={**os.environ, "BLUEBROKER_API_KEY": ""}
    )
    assert_one_line(empty, 2, "is empty")


def test_a_missing_extra_is_named(monkeypatch, capsys, tmp_path):
    """A client-only install running ``serve``: which package, and how to install it."""
    import sys

    monkeypatch.setitem(sys.modules, "fastapi", None)
    for name in [name for name in sys.modules if name.startswith("bluebroker.server")]:
        monkeypatch.delitem(sys.modules, name)  # imported by other tests: import them anew
    port = str(free_port())
    assert main(["serve", "--catalog", f"sqlite:///{tmp_path}/c.db", "--port", port]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: this command needs the Python package 'fastapi', which is not installed; "
        "pip install 'bluebroker[all]'\n"
    )
    assert not (tmp_path / "c.db").exists()


def test_serve_shows_no_password(postgresql_uri):
    """PostgreSQL here trusts local connections, so a URI with a password still connects:
    what serve prints (and logs keep) must not show it."""
    from bluebroker.catalog import open_catalog
    from tests.processes import Running

    open_catalog(postgresql_uri, create=True).close()
    uri = postgresql_uri.replace("://postgres@", "://postgres:pa55word-x@")
    assert uri != postgresql_uri
    server = Running("serve", "--port", str(free_port()), "--catalog", uri)
    try:
        line = server.wait_for("(API docs")
        assert "postgres:***@" in line and "pa55word-x" not in server.output
        wait_until_answering(line.split(" at ")[1].split()[0])
    finally:
        server.interrupt()
        server.finish()
        server.close()


def test_serve_limits_from_the_command_line(tmp_path):
    """``serve --limit NAME=VALUE`` reaches the app (a body over it is a 413); a wrong name or
    value is one line naming the limits."""
    import httpx

    from tests.processes import Running

    uri = f"sqlite:///{tmp_path}/c.db"
    for bad, words in (
        ("max_bodybytes=5", ["NAME one of", "max_body_bytes"]),
        ("max_body_bytes=lots", ["needs a number"]),
        ("search_timeout=0", ["search_timeout must be a positive number"]),
        ("max_body_bytes", ["NAME=VALUE"]),
    ):
        assert_one_line(run("serve", "--catalog", uri, "--limit", bad, cwd=tmp_path), 2, *words)
    server = Running(
        "serve", "--port", str(free_port()), "--catalog", uri, "--limit", "max_body_bytes=1000"
    )
    try:
        url = server.wait_for("serving ").split(" at ")[1].split()[0]
        wait_until_answering(url)
        big = httpx.post(
            f"{url}/api/v1/documents/bmm/raw", content=b"[" + b" " * 2000 + b"]", headers=KEY
        )
        assert big.status_code == 413 and "1000" in big.text, big.text
        small = httpx.post(f"{url}/api/v1/documents/bmm/raw", content=b"[]", headers=KEY)
        assert small.status_code == 200, small.text
    finally:
        server.interrupt()
        assert server.finish()[0] == 0
        server.close()

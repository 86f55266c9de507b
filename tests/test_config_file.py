"""The configuration file of ``serve`` and ``ingest kafka`` (bluebroker/config_file.py): every
key checked with a one-line error naming it, the environment over the file, the command line
over both, ``bluebroker config check``, and real processes started from a file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from bluebroker.cli import main, parser
from bluebroker.config_file import configure
from bluebroker.config_keys import KAFKA, SERVE, keys
from tests.conftest import FAST_CONSUMER
from tests.processes import Running, free_port, run, wait_until_answering

DOCS = Path(__file__).parents[1] / "docs" / "configuration.md"
NO_ENV = {k: v for k, v in os.environ.items() if not k.startswith("BLUEBROKER_")}


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("BLUEBROKER_"):
            monkeypatch.delenv(name)
    return monkeypatch


def write(tmp_path: Path, settings: dict | str) -> str:
    path = tmp_path / "bluebroker.yml"
    text = settings if isinstance(settings, str) else yaml.safe_dump(settings)
    path.write_text(text)
    return str(path)


def test_config_check_prints_the_effective_settings_with_secrets_masked(tmp_path):
    path = write(
        tmp_path,
        {
            "catalog": {"uri": "postgresql://bb:uri-secret@db/bluebroker"},
            "mounts": {"csx": "mongodb://reader:mongo-secret@mongo/csx"},
            "kafka": {
                "bootstrap_servers": ["kafka-1:9092", "kafka-2:9092"],
                "topic": "bmm.bluesky.runengine.documents",
                "consumer": {"sasl_oauth_token": "consumer-secret", "max_poll_records": 100},
                "security": {"security_protocol": "SASL_SSL", "sasl_plain_password": "sasl-pw"},
            },
            "auth": {"api_key": "the-api-key", "public": False},
            "limits": {"search_timeout": 30},
        },
    )
    env = {**NO_ENV, "BLUEBROKER_KAFKA_GROUP": "workers-2", "BLUEBROKER_SERVER_PORT": "8100"}
    done = run("config", "check", path, env=env)
    assert done.returncode == 0, done.stderr
    for secret in ("uri-secret", "mongo-secret", "consumer-secret", "sasl-pw", "the-api-key"):
        assert secret not in done.stdout
    shown = yaml.safe_load(done.stdout)  # what it prints is YAML, as the file is
    assert shown["catalog"]["uri"] == "postgresql://bb:***@db/bluebroker"
    assert shown["mounts"] == {"csx": "mongodb://reader:***@mongo/csx"}
    assert shown["kafka"]["group"] == "workers-2" and shown["server"]["port"] == 8100
    assert shown["kafka"]["bootstrap_servers"] == ["kafka-1:9092", "kafka-2:9092"]
    assert shown["kafka"]["consumer"] == {"sasl_oauth_token": "***", "max_poll_records": 100}
    assert shown["kafka"]["security"]["sasl_plain_password"] == "***"
    assert shown["auth"]["api_key"] == "***" and shown["limits"]["search_timeout"] == 30
    assert shown["limits"]["max_depth"] == 64  # defaults are shown too
    lines = done.stdout.splitlines()
    assert "  group: workers-2  # $BLUEBROKER_KAFKA_GROUP" in lines
    assert "  max_depth: 64  # default" in lines


@pytest.mark.parametrize(
    ("text", "env", "words"),
    [
        ("kafka:\n  group: 3\n", {}, "kafka.group: expected text, got a number 3; "
         "e.g. group: bluebroker-ingest"),
        ("kafka:\n  gruop: x\n", {}, "kafka.gruop: unknown key; did you mean kafka.group?"),
        ("kafak:\n  group: x\n", {}, "kafak: unknown key; did you mean kafka?"),
        ("kafka:\n  security:\n    sasl_plain_pasword: x\n", {},
         "kafka.security.sasl_plain_pasword: unknown key; did you mean "
         "kafka.security.sasl_plain_password?"),
        ("kafka:\n  security:\n    security_protocol: TLS\n", {},
         "'TLS' is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
        ("kafka:\n  bootstrap_servers: kafka\n", {}, "'kafka' is not HOST:PORT"),
        ("server:\n  port: 70000\n", {}, "server.port: 70000 is out of range (1 to 65535)"),
        ("server:\n  port: '8000'\n", {}, "server.port: expected a whole number, got text"),
        ("auth:\n  public: yes please\n", {}, "auth.public: expected true or false"),
        ("limits:\n  max_depth: 0\n", {}, "limits.max_depth: 0 is out of range"),
        ("mounts:\n  'a b': directory:/x\n", {}, "mounts: name 'a b' must be letters"),
        ("mounts: directory:/x\n", {}, "mounts: expected a mapping of NAME: VALUE, got text"),
        ("kafka: [a]\n", {}, "kafka: expected a mapping of settings, got a list"),
        ("- a\n", {}, "expected a mapping of sections at the top"),
        ("kafka:\n  group: [x\n", {}, "not valid YAML at line"),
        ("", {"BLUEBROKER_SERVER_PORT": "eighty"}, "server.port: expected a whole number"),
        ("", {"BLUEBROKER_KAFKA_GRUOP": "g"},
         "$BLUEBROKER_KAFKA_GRUOP: no such setting; did you mean $BLUEBROKER_KAFKA_GROUP?"),
        ("", {"BLUEBROKER_AUTH_PUBLIC": "{oops"}, "$BLUEBROKER_AUTH_PUBLIC: '{oops' is not a"),
    ],
)
def test_mistakes_are_one_line_naming_the_key(text, env, words, tmp_path, clean_env, capsys):
    for name, value in env.items():
        clean_env.setenv(name, value)
    assert main(["config", "check", write(tmp_path, text)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err, err


def test_empty_sections_are_defaults(tmp_path, clean_env):
    args = _configured(["serve", "--config", write(tmp_path, "kafka:\nauth:\nmounts:\n")])
    assert (args.port, args.mount, args.kafka) == (8000, [], None)


def test_a_missing_file_is_one_line(tmp_path, capsys, clean_env):
    assert main(["serve", "--config", str(tmp_path / "nope.yml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --config ") and "cannot read it" in err and err.count("\n") == 1


def _configured(argv: list[str]):
    args = parser().parse_args(argv)
    configure(args, argv)
    return args


def test_command_line_over_environment_over_file(tmp_path, clean_env):
    path = write(
        tmp_path,
        {
            "server": {"port": 8100, "host": "0.0.0.0"},
            "catalog": {"uri": "sqlite:///from-file.db", "data_roots": [str(tmp_path)]},
            "limits": {"search_timeout": 30, "max_depth": 10},
            "mounts": {"files": "directory:/a", "lake": "directory:/b"},
            "auth": {"cors_origins": ["https://a.example.org"], "public": True},
            "kafka": {"topic": "bmm.bluesky.runengine.documents", "group": "file-group"},
        },
    )
    args = _configured(["serve", "--config", path])
    assert (args.port, args.host, args.catalog, args.public) == (8100, "0.0.0.0",
                                                                "sqlite:///from-file.db", True)
    assert args.data_root == [tmp_path.resolve()]
    assert args.kafka is None and args.topic is None  # serve ingests only with server.ingest
    clean_env.setenv("BLUEBROKER_SERVER_PORT", "8200")
    clean_env.setenv("BLUEBROKER_MOUNTS_RAW", "directory:/c")
    assert _configured(["serve", "--config", path]).port == 8200
    args = _configured(
        ["serve", "--config", path, "--port", "8300", "--limit", "max_depth=20",
         "--mount", "files=directory:/d", "--cors-origin", "https://b.example.org"]
    )
    assert args.port == 8300
    assert sorted(args.limit) == ["max_depth=20", "search_timeout=30"]
    assert sorted(args.mount) == ["files=directory:/d", "lake=directory:/b", "raw=directory:/c"]
    assert args.cors_origin == ["https://a.example.org", "https://b.example.org"]


def test_the_kafka_section(tmp_path, clean_env):
    path = write(
        tmp_path,
        {
            "catalog": {"uri": "sqlite:///c.db"},
            "server": {"ingest": True},
            "kafka": {
                "bootstrap_servers": ["k1:9092", "k2:9092"],
                "topic": "bmm.bluesky.runengine.documents",
                "group": "g",
                "dead_letter_topic": "dl",
                "batch_size": 100,
                "consumer": {"max_poll_records": 5},
                "security": {"security_protocol": "SASL_SSL", "sasl_plain_password": "1234"},
            },
        },
    )
    args = _configured(["ingest", "kafka", "--config", path, "--group-id", "mine"])
    assert (args.bootstrap_servers, args.topic, args.group_id, args.dead_letter_topic,
            args.batch_size, args.catalog) == ("k1:9092,k2:9092",
                                               "bmm.bluesky.runengine.documents", "mine", "dl",
                                               100, "sqlite:///c.db")
    assert sorted(args.consumer_config) == [
        "max_poll_records=5", "sasl_plain_password=1234", "security_protocol=SASL_SSL"
    ]
    served = _configured(["serve", "--config", path])
    assert served.kafka == "k1:9092,k2:9092" and served.topic.startswith("bmm.")
    from bluebroker.cli_commands import config_items

    assert config_items(served.consumer_config)["sasl_plain_password"] == "1234"  # text


def test_ingest_kafka_says_what_is_missing(tmp_path, clean_env, capsys):
    assert main(["ingest", "kafka", "--bootstrap-servers", "k:9092", "--topic", "t"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: ingest kafka needs --catalog URI, or catalog.uri in --config FILE, or "
        "$BLUEBROKER_CATALOG_URI\n"
    )


@pytest.mark.parametrize("command", [SERVE, KAFKA])
def test_defaults_are_the_options_defaults(command, clean_env):
    args = parser().parse_args(command.split())
    for key in keys():
        if command not in key.commands or key.dest is None or key.path.startswith("limits."):
            continue
        if key.section == "kafka.security" or (command == KAFKA and key.path == "catalog.uri"):
            continue
        if not hasattr(args, key.dest):  # serve's kafka.dead_letter_topic, batch_size,
            assert command == SERVE, key.path  # auth.oidc_client_secret: no options of their own
            continue
        expected = [] if key.kind == "mapping" else key.default
        assert getattr(args, key.dest) == expected, key.path


def test_the_limits_are_the_servers():
    import dataclasses

    from bluebroker.config_keys import LIMITS
    from bluebroker.server.limits import Limits

    assert {f.name: f.default for f in dataclasses.fields(Limits)} == LIMITS
    for name, default in LIMITS.items():
        assert type(default) is type(getattr(Limits(), name)), name


def test_every_key_is_documented_once_with_its_variable():
    text = DOCS.read_text()
    for key in keys():
        row = f"| `{key.path}` | `{key.env}` |"
        assert text.count(row) == 1, f"docs/configuration.md lacks the row starting {row}"
    guide = (DOCS.parent / "operator-guide.md").read_text()
    assert "(configuration.md)" in guide


def test_serve_from_a_config_file(tmp_path):
    key_file = tmp_path / "api_key"
    key_file.write_text("key-from-a-file\n")
    port = free_port()
    path = write(
        tmp_path,
        {
            "catalog": {"uri": f"sqlite:///{tmp_path}/c.db"},
            "server": {"port": port},
            "auth": {"api_key_file": str(key_file)},
            "limits": {"max_body_bytes": 1000},
        },
    )
    server = Running("serve", "--config", path, env=NO_ENV)
    try:
        url = server.wait_for("serving ").split(" at ")[1].split()[0]
        assert url == f"http://127.0.0.1:{port}"
        wait_until_answering(url)
        key = {"Authorization": "Bearer key-from-a-file"}
        assert httpx.get(f"{url}/api/v1/search/", headers=key).status_code == 200
        assert httpx.get(f"{url}/api/v1/search/").status_code == 401
        big = httpx.post(f"{url}/api/v1/documents/bmm/raw", content=b"[" + b" " * 2000 + b"]",
                         headers=key)
        assert big.status_code == 413 and "1000" in big.text, big.text
        assert "key-from-a-file" not in server.output
    finally:
        server.interrupt()
        assert server.finish()[0] == 0
        server.close()


def test_ingest_kafka_from_a_config_file(tmp_path, kafka_broker, new_topic):
    from tests.ingest.kafka_workers import compose, produce, rows, wait

    topic = new_topic()
    uri = f"sqlite:///{tmp_path}/c.db"
    path = write(
        tmp_path,
        {
            "kafka": {
                "bootstrap_servers": [kafka_broker],
                "topic": topic,
                "group": f"g-{topic}",
                "batch_size": 10,
                "consumer": FAST_CONSUMER,
            },
        },
    )
    log = tmp_path / "worker.log"
    env = {**NO_ENV, "BLUEBROKER_CATALOG_URI": uri}
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("bluebroker")), "ingest", "kafka", "--config",
             path], stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    try:
        docs = produce(kafka_broker, topic, compose(25))
        uid = docs[0][1]["uid"]

        def written() -> bool:
            assert worker.poll() is None, log.read_text()[-3000:]
            return rows(uri, topic, uid) == 25

        wait(written, 120, "the run's 25 rows")
    finally:
        worker.send_signal(signal.SIGINT)
        assert worker.wait(60) == 0, log.read_text()[-3000:]


def test_the_oidc_client_secret_from_the_environment(tmp_path, clean_env):
    """The provider settings file can be shared (a ConfigMap, a mounted file) while its
    secret comes from the environment."""
    from bluebroker.catalog import open_catalog
    from bluebroker.cli_auth import load_oidc

    oidc = tmp_path / "oidc.yml"
    oidc.write_text("issuer: https://login.example.org\nclient_id: bb\nclient_secret: in-file\n")
    path = write(tmp_path, {"auth": {"oidc_config": str(oidc)}})
    clean_env.setenv("BLUEBROKER_AUTH_OIDC_CLIENT_SECRET", "from-env")
    args = _configured(["serve", "--config", path])
    assert (args.oidc_config, args.oidc_client_secret) == (str(oidc), "from-env")
    catalog = open_catalog(f"sqlite:///{tmp_path}/c.db", create=True)
    try:
        assert load_oidc(args.oidc_config, catalog, args.oidc_client_secret).config.client_secret \
            == "from-env"
        assert load_oidc(args.oidc_config, catalog).config.client_secret == "in-file"
    finally:
        catalog.close()


def test_an_ingest_only_install_reads_the_file(tmp_path):
    """Workers installed with bluebroker[ingest] (no server packages) share the file."""
    path = write(tmp_path, {"limits": {"search_timeout": 30}, "kafka": {"group": "g"}})
    code = (
        "import sys; sys.modules['starlette'] = sys.modules['fastapi'] = None; "
        "from bluebroker.cli import main; sys.exit(main(['config', 'check', sys.argv[1]]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, path], capture_output=True, text=True, env=NO_ENV,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "  search_timeout: 30" in done.stdout.splitlines()

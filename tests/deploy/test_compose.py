"""docker-compose.yml, the Dockerfile and deploy/ hold together (Docker is not on these machines,
so their structure is checked here): every service built or pulled, health-checked, its
variables in the example env file, its config file valid for ``bluebroker config check``, its
commands real bluebroker commands, and the operator guide's commands naming real services."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from bluebroker.cli import parser
from tests.processes import run

ROOT = Path(__file__).parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OURS = ("migrate", "ingest", "server")  # the services that run the bluebroker image
CONFIG = yaml.safe_load((ROOT / "deploy" / "bluebroker.yml").read_text())
EXAMPLE_ENV = ROOT / "deploy" / "bluebroker.env.example"


def example_env() -> dict[str, str]:
    out = {}
    for line in EXAMPLE_ENV.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), line
            out[name] = value
    return out


def test_the_services():
    assert set(SERVICES) == {"kafka", "postgres", "migrate", "ingest", "server", "proxy"}
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
    for name in OURS:
        assert SERVICES[name]["build"] == "." and SERVICES[name]["image"] == "bluebroker:latest"
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    assert SERVICES["proxy"]["image"].startswith("caddy:")


def test_kafka_is_the_official_image_in_kraft_mode():
    kafka = SERVICES["kafka"]
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", kafka["image"])
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert not any("ZOOKEEPER" in key for key in env) and "depends_on" not in kafka
    internal = CONFIG["kafka"]["bootstrap_servers"]
    assert internal == ["kafka:9092"] and "INTERNAL://kafka:9092" in env[
        "KAFKA_ADVERTISED_LISTENERS"
    ]
    assert env["KAFKA_NUM_PARTITIONS"] >= 2  # several workers have partitions to share


def test_health_checks_and_ports():
    for name, service in SERVICES.items():
        if name == "migrate":
            assert service["restart"] == "no"  # runs once, others wait for it
            continue
        check = service["healthcheck"]["test"]
        assert check[0] in ("CMD", "CMD-SHELL") and len(check) > 1, name
    port = CONFIG["server"]["port"]
    assert f"http://127.0.0.1:{port}/readyz" in " ".join(SERVICES["server"]["healthcheck"]["test"])
    metrics = CONFIG["metrics"]["port"]
    assert f"http://127.0.0.1:{metrics}/metrics" in " ".join(
        SERVICES["ingest"]["healthcheck"]["test"]
    )
    assert CONFIG["metrics"]["host"] == "0.0.0.0" and CONFIG["server"]["host"] == "0.0.0.0"
    assert SERVICES["server"]["expose"] == [str(port)]
    for name in ("server", "ingest", "migrate"):  # replicas: no fixed host ports
        assert "ports" not in SERVICES[name]
    assert set(SERVICES["proxy"]["ports"]) == {"80:80", "443:443"}
    assert SERVICES["kafka"]["ports"] == ["9094:9094"]
    for name in ("ingest", "server"):
        assert SERVICES[name]["deploy"]["replicas"]
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["ingest"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_volumes_and_mounts():
    assert set(COMPOSE["volumes"]) == {"catalog", "kafka-data", "caddy-data"}
    assert "catalog:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]
    for name in OURS:
        volumes = SERVICES[name]["volumes"]
        assert "${DETECTOR_DATA}:/data:ro" in volumes  # detector files: read-only
        for volume in volumes:
            source, _, mode = volume.split(":")
            assert mode == "ro", volume
            if source.startswith("./"):
                assert (ROOT / source).is_file(), f"{source} is mounted but missing"
        assert "./deploy/bluebroker.yml:/etc/bluebroker/bluebroker.yml:ro" in volumes
        assert SERVICES[name]["environment"]["BLUEBROKER_CONFIG"] == (
            "/etc/bluebroker/bluebroker.yml"
        )
        assert SERVICES[name]["env_file"] == ["deploy/bluebroker.env"]
    assert CONFIG["catalog"]["data_roots"] == ["/data"]
    assert CONFIG["auth"]["oidc_config"] == "/etc/bluebroker/oidc.yml"
    assert CONFIG["auth"]["policy"] == "/etc/bluebroker/policy.yml"
    for ignore in (".gitignore", ".dockerignore"):  # the real env file never leaves the host
        assert "deploy/bluebroker.env" in (ROOT / ignore).read_text().splitlines(), ignore


def test_every_variable_is_in_the_example_env_file():
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)(?::?-[^}]*)?\}", text))
    used |= set(re.findall(r"\$([A-Z][A-Z0-9_]*)", text))
    defined = example_env()
    assert used, "no variables found: the pattern is wrong"
    assert used <= set(defined), f"not in {EXAMPLE_ENV.name}: {sorted(used - set(defined))}"
    caddy = (ROOT / "deploy" / "Caddyfile").read_text()
    for name in re.findall(r"\{\$([A-Z0-9_]+)\}", caddy):
        assert SERVICES["proxy"]["environment"][name] == f"${{{name}}}"
    assert int(defined["INGEST_WORKERS"]) >= 1 and int(defined["SERVERS"]) >= 1


def test_the_caddyfile_sends_to_every_ready_server():
    caddy = (ROOT / "deploy" / "Caddyfile").read_text()
    assert re.search(r"dynamic a \{\s*name server\s*port (\d+)", caddy).group(1) == str(
        CONFIG["server"]["port"]
    )
    assert "health_uri /readyz" in caddy and "flush_interval -1" in caddy
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in SERVICES["proxy"]["volumes"]


def test_the_mounted_config_passes_config_check():
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("BLUEBROKER_")}
    env.update(example_env())  # as the containers get it, from env_file
    done = run("config", "check", str(ROOT / "deploy" / "bluebroker.yml"), env=env)
    assert done.returncode == 0, done.stderr
    shown = yaml.safe_load(done.stdout)
    assert shown["auth"]["oidc_client_secret"] == "***"  # from the env file, masked
    assert shown["log"]["format"] == "json"
    from bluebroker.server.oidc import OIDCConfig
    from bluebroker.server.policy import AccessPolicy

    oidc = OIDCConfig.from_file(ROOT / "deploy" / "oidc.yml")
    assert oidc.public_url.startswith("https://") and not oidc.client_secret
    AccessPolicy.from_file(ROOT / "deploy" / "policy.yml")


def _commands() -> list[list[str]]:
    """Every bluebroker command line the compose file runs."""
    out = []
    for name in OURS:
        service = SERVICES[name]
        if service.get("entrypoint") == ["sh", "-c"]:
            for part in service["command"][0].split("&&"):
                words = shlex.split(part)
                assert words[0] == "bluebroker", part
                out.append(words[1:])
        else:
            out.append(service["command"])
    return out


def test_the_commands_are_bluebroker_commands():
    commands = _commands()
    assert ["serve"] in commands and ["ingest", "kafka"] in commands
    for words in commands:
        parser().parse_args(words)  # exits on an unknown command or option
    uri = CONFIG["catalog"]["uri"]
    assert ["catalog", "init", uri] in commands and ["catalog", "upgrade", uri] in commands


def test_the_dockerfile():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", text, re.MULTILINE)
    assert [name for _, name in stages] == ["build", "runtime"]
    assert re.fullmatch(r"python:3\.\d+-slim", stages[-1][0])
    runtime = text.split("AS runtime", 1)[1]
    assert "COPY --from=build /opt/bluebroker /opt/bluebroker" in runtime
    users = re.findall(r"^USER (\S+)$", runtime, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(rf"useradd [^\n]*{users[-1]}", runtime.replace("\\\n", " "))
    assert 'ENTRYPOINT ["bluebroker"]' in runtime and 'CMD ["serve"]' in runtime
    exposed = re.search(r"^EXPOSE (.+)$", runtime, re.MULTILINE).group(1).split()
    assert {str(CONFIG["server"]["port"]), str(CONFIG["metrics"]["port"])} <= set(exposed)
    assert "BLUEBROKER_CONFIG=/etc/bluebroker/bluebroker.yml" in runtime
    extras = re.search(r'pip install --no-cache-dir "\.\[([a-z,]+)\]"', text).group(1)
    assert {"server", "directory"} <= set(extras.split(","))
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".git", ".venv", "tests"} <= set(ignored)


GUIDE = (ROOT / "docs" / "operator-guide.md").read_text()


def _compose_lines() -> list[list[str]]:
    text = GUIDE.replace("\\\n", " ")
    return [
        shlex.split(line.split("#", 1)[0])
        for line in text.splitlines()
        if line.strip().startswith("docker compose")
    ]


@pytest.mark.parametrize("words", _compose_lines(), ids=" ".join)
def test_the_guides_commands_name_real_services(words):
    assert words[:4] == ["docker", "compose", "--env-file", "deploy/bluebroker.env"], words
    rest = words[4:]
    action, args = rest[0], rest[1:]
    assert action in ("up", "ps", "logs", "exec", "run", "restart", "stop"), action
    named, positional = [], []
    words_left = iter(args)
    for word in words_left:
        if word == "--scale":
            named.append(next(words_left).split("=")[0])
        elif not word.startswith("-"):
            positional.append(word)
    if action in ("exec", "run"):  # [-T] SERVICE COMMAND...: bluebroker's commands are real
        service = positional[0]
        named.append(service)
        after = args[args.index(service) + 1 :]
        if after[0] == "bluebroker":
            parser().parse_args(after[1:])
    elif action in ("logs", "restart", "stop"):
        named += positional
    assert named or action in ("up", "ps")
    assert set(named) <= set(SERVICES), named


def test_the_guide_shows_the_deployment():
    assert len(_compose_lines()) >= 4
    for name in SERVICES:
        assert f"| `{name}` |" in GUIDE, f"the guide's table of services lacks {name}"

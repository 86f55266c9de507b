"""The keys of the configuration file (``bluebroker/config_file.py`` reads it): the one list
that the loader, ``bluebroker config check`` and docs/configuration.md all follow."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "BLUEBROKER_"
SERVE, KAFKA = "serve", "ingest kafka"
BOTH = (SERVE, KAFKA)
_SERVER = re.compile(r"\[?[\w.:-]+\]?:\d{1,5}")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Key:
    """One setting: where it lives in the file, which option it stands for, how it is checked."""

    path: str  # "kafka.group"
    kind: str  # text, bool, int, number, list, mapping, choice, servers
    default: Any
    example: str  # the YAML line shown in errors and docs
    dest: str | None  # the argparse destination it fills
    commands: tuple[str, ...] = BOTH
    secret: bool = False
    low: float = 1
    high: float = float("inf")
    choices: tuple[str, ...] = ()

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.path.replace(".", "_").upper()

    @property
    def section(self) -> str:
        return self.path.rpartition(".")[0]

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]


MiB = 1024 * 1024
# server/limits.py's Limits, written out here so that an ingest-only install (no server
# packages) reads the same file; tests/test_config_file.py checks that the two agree.
LIMITS: dict[str, int | float] = {
    "max_body_bytes": 64 * MiB,
    "max_depth": 64,
    "max_url_bytes": 32 * 1024,
    "max_offset": 10_000_000,
    "max_read_bytes": 1024 * MiB,
    "max_image_size": 8192,
    "search_timeout": 10.0,
    "live_queue_bytes": 64 * MiB,
}

_SECURITY = [  # kafka-python's own names for its security settings
    ("security_protocol", "choice", "SASL_SSL"),
    ("sasl_mechanism", "choice", "SCRAM-SHA-512"),
    ("sasl_plain_username", "text", "bluebroker"),
    ("sasl_plain_password", "text", "${KAFKA_PASSWORD}"),
    ("sasl_kerberos_service_name", "text", "kafka"),
    ("ssl_cafile", "text", "/etc/bluebroker/kafka-ca.pem"),
    ("ssl_certfile", "text", "/etc/bluebroker/kafka-client.pem"),
    ("ssl_keyfile", "text", "/etc/bluebroker/kafka-client.key"),
    ("ssl_password", "text", "${KAFKA_KEY_PASSWORD}"),
    ("ssl_check_hostname", "bool", "true"),
]
_CHOICES = {
    "security_protocol": ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    "sasl_mechanism": ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"),
}


def _keys() -> list[Key]:
    from .cli import DEFAULT_URI

    keys = [
        Key("catalog.uri", "text", DEFAULT_URI, "uri: postgresql://bluebroker@db/bluebroker",
            "catalog"),
        Key("catalog.data_roots", "list", [], "data_roots: [/data/detectors]", "data_root"),
        Key("catalog.root_map", "mapping", {}, "root_map: {/old/root: /new/root}", "root_map",
            (SERVE,)),
        Key("mounts", "mapping", {}, "mounts: {files: directory:/data/lake}", "mount", (SERVE,)),
        Key("server.host", "text", "127.0.0.1", "host: 0.0.0.0", "host", (SERVE,)),
        Key("server.port", "int", 8000, "port: 8000", "port", (SERVE,), high=65535),
        Key("server.live_queue_limit", "int", 1000, "live_queue_limit: 1000",
            "live_queue_limit", (SERVE,)),
        Key("server.watch", "bool", False, "watch: true", "watch", (SERVE,)),
        Key("server.ingest", "bool", False, "ingest: true", None, (SERVE,)),
        Key("kafka.bootstrap_servers", "servers", None, "bootstrap_servers: [kafka:9092]",
            "bootstrap_servers"),
        Key("kafka.topic", "text", None, "topic: '.*\\.bluesky\\.runengine\\.documents'", "topic"),
        Key("kafka.catalog_path_template", "text", "{beamline}/raw",
            "catalog_path_template: '{beamline}/raw'", "catalog_path_template"),
        Key("kafka.group", "text", "bluebroker-ingest", "group: bluebroker-ingest", "group_id"),
        Key("kafka.dead_letter_topic", "text", "bluebroker.dead-letters",
            "dead_letter_topic: bluebroker.dead-letters", "dead_letter_topic"),
        Key("kafka.batch_size", "int", 2000, "batch_size: 2000", "batch_size"),
        Key("kafka.consumer", "mapping", {}, "consumer: {max_poll_records: 5000}",
            "consumer_config"),
        *(
            Key(f"kafka.security.{name}", kind, None, f"{name}: {example}", None,
                secret="password" in name, choices=_CHOICES.get(name, ()))
            for name, kind, example in _SECURITY
        ),
        Key("auth.api_key", "text", None, "api_key: ${BLUEBROKER_AUTH_API_KEY}", "api_key",
            (SERVE,), secret=True),
        Key("auth.api_key_file", "text", None, "api_key_file: /run/secrets/bluebroker_api_key",
            None, (SERVE,)),
        Key("auth.public", "bool", False, "public: true", "public", (SERVE,)),
        Key("auth.oidc_config", "text", None, "oidc_config: /etc/bluebroker/oidc.yml",
            "oidc_config", (SERVE,)),
        Key("auth.oidc_client_secret", "text", None,
            "oidc_client_secret: ${BLUEBROKER_AUTH_OIDC_CLIENT_SECRET}", "oidc_client_secret",
            (SERVE,), secret=True),
        Key("auth.policy", "text", None, "policy: /etc/bluebroker/policy.yml", "policy",
            (SERVE,)),
        Key("auth.cors_origins", "list", [], "cors_origins: [https://data.example.org]",
            "cors_origin", (SERVE,)),
        Key("log.verbose", "bool", False, "verbose: true", "verbose"),
        Key("log.format", "choice", "text", "format: json", "log_format", (SERVE,),
            choices=("text", "json")),
        Key("metrics.public", "bool", False, "public: true", "metrics_public", (SERVE,)),
        Key("metrics.port", "int", None, "port: 9100", "metrics_port", (KAFKA,), high=65535),
        Key("metrics.host", "text", "127.0.0.1", "host: 0.0.0.0", "metrics_host", (KAFKA,)),
    ]
    for name, default in LIMITS.items():
        kind = "number" if isinstance(default, float) else "int"
        keys.append(Key(f"limits.{name}", kind, default, f"{name}: {default}", "limit", (SERVE,),
                        low=1e-3 if kind == "number" else 1))
    return keys


_CACHE: list[Key] = []


def keys() -> list[Key]:
    """Every key the file takes, in the order the docs and ``config check`` show them."""
    if not _CACHE:
        _CACHE.extend(_keys())
    return _CACHE

"""The ``bluebroker`` command: serve a catalog, ingest documents, run the demo.

An operator's mistake (a wrong catalog URI, a missing file, a file of the wrong kind, a port
in use) ends in one ``error:`` line that says what to fix, and exit status 2; only a bug shows
a traceback (``--debug`` shows it for everything).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from pathlib import Path

from . import __version__, cli_auth, cli_observability, config_file
from . import cli_commands as commands

DEFAULT_DATA = Path("bluebroker-data")
DEFAULT_URI = f"sqlite:///{DEFAULT_DATA / 'catalog.db'}"
DATA_ROOT_HELP = "a folder detector files may be read from; files elsewhere are refused"
URI_HELP = "sqlite:///path/catalog.db or postgresql://user@host:5432/database"
# libpq waits for an unanswering host as long as TCP does (minutes); a typo should not.
CONNECT_TIMEOUT = "10"


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as one line too, pointing at --help instead of printing the usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def _number(kind: type, low: float, high: float = math.inf, what: str = "") -> object:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not low <= value <= high:
            noun = "a whole number" if kind is int else "a number"
            bounds = f"of {low:g} or more" if high == math.inf else f"from {low:g} to {high:g}"
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun} {bounds}{what}")
        return value

    return parse


def _folder(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not an existing folder")
    return path.resolve()


def _servers(text: str) -> str:
    for server in text.split(","):
        if not re.fullmatch(r"\[?[\w.:-]+\]?:\d{1,5}", server.strip()):
            raise argparse.ArgumentTypeError(
                f"{server!r} is not HOST:PORT (several are separated by commas)"
            )
    return text


def _add_catalog(
    p: argparse.ArgumentParser, default: str | None = None, required: bool = True
) -> None:
    what = f" (default {default})" if default else ""
    p.add_argument(
        "--catalog",
        metavar="URI",
        default=default,
        required=default is None and required,
        help=f"catalog URI: {URI_HELP}{what}",
    )


def _add_data_root(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-root",
        action="append",
        default=[],
        type=_folder,
        metavar="DIR",
        help=f"{DATA_ROOT_HELP} (repeatable)",
    )


def _add_server_options(p: argparse.ArgumentParser, free_port: bool) -> None:
    _add_catalog(p, DEFAULT_URI)
    _add_data_root(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument(
        "--port",
        type=_number(
            int, 0 if free_port else 1, 65535, "; 0 picks a free port" if free_port else ""
        ),
        default=8000,
        help="port to listen on (8000); pick another when 8000 is taken"
        + ("; 0 picks a free one" if free_port else ""),
    )
    cli_auth.add_server_auth_options(p)  # --api-key, --public, --cors-origin


def _add_folder_options(p: argparse.ArgumentParser) -> None:
    """Served folders of files (bluebroker.directory)."""
    p.add_argument(
        "source",
        nargs="*",
        metavar="directory PATH",
        help="serve the folder PATH (its files as nodes, indexed in --catalog) at the root",
    )
    p.add_argument(
        "--mount",
        action="append",
        default=[],
        metavar="NAME=directory:PATH|NAME=mongodb://HOST/DB",
        help="also serve the folder PATH, or a legacy Databroker MongoDB database (read live: "
        "?assets=DB names its asset database), at /NAME beside the catalogs of runs (repeatable)",
    )
    p.add_argument(
        "--watch", action="store_true", help="register files added, changed or removed live"
    )


def _add_kafka_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--group-id",
        metavar="NAME",
        default="bluebroker-ingest",
        help="Kafka consumer group; workers in one group share the partitions (bluebroker-ingest)",
    )
    p.add_argument(
        "--catalog-path-template",
        metavar="TEMPLATE",
        default="{beamline}/raw",
        help="catalog path per topic ({beamline} is the topic's first part, {topic} all of "
        "it; default {beamline}/raw)",
    )
    p.add_argument(
        "--consumer-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra kafka-python consumer settings (repeatable)",
    )


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bluebroker", description=__doc__)
    p.add_argument("--version", action="version", version=f"bluebroker {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log what is happening")
    p.add_argument(
        "--debug", action="store_true", help="show the full traceback of any error (for reports)"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cat = sub.add_parser("catalog", help="create, upgrade or inspect a catalog database")
    cat.add_argument(
        "action",
        choices=["init", "upgrade", "info", "backup"],
        help="init: make a new catalog; upgrade: bring its schema up to date; "
        "info: schema version and runs per catalog path; backup: copy a SQLite catalog in use "
        "to FILE (PostgreSQL: pg_dump)",
    )
    cat.add_argument("uri", metavar="URI", help=f"the catalog database: {URI_HELP}")
    cat.add_argument("file", metavar="FILE", nargs="?", type=Path, help="backup: the new file")
    cat.set_defaults(func=commands.cmd_catalog)

    ingest = sub.add_parser("ingest", help="write documents into a catalog")
    isub = ingest.add_subparsers(dest="source", required=True, metavar="SOURCE")
    files = isub.add_parser("file", help="replay JSON Lines or msgpack document files")
    files.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="JSON Lines or msgpack files of [name, doc] pairs",
    )
    _add_catalog(files)
    _add_data_root(files)
    files.add_argument(
        "--path",
        metavar="CATALOG_PATH",
        default="raw",
        help="catalog path for the runs, e.g. bmm/raw (default raw)",
    )
    files.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    files.set_defaults(
        func=commands.cmd_ingest_file,
        interrupted="documents written so far stay; the same command again skips them",
    )
    kafka = isub.add_parser("kafka", help="consume document topics from Kafka (a worker)")
    kafka.add_argument(
        "--bootstrap-servers",
        type=_servers,
        metavar="HOST:PORT",
        help="Kafka brokers to start from, comma-separated",
    )
    kafka.add_argument(
        "--topic",
        metavar="REGEX_OR_NAME",
        help="a topic, or a regular expression such as '.*bluebroker.*'",
    )
    _add_catalog(kafka, required=False)  # --bootstrap-servers, --topic, --catalog: or --config
    config_file.add_config_option(kafka)
    _add_data_root(kafka)
    _add_kafka_options(kafka)
    kafka.add_argument(
        "--dead-letter-topic",
        metavar="TOPIC",
        default=commands.DEAD_LETTERS,
        help="where messages that cannot be ingested go, unchanged (bluebroker.dead-letters)",
    )
    kafka.add_argument(
        "--batch-size",
        metavar="N",
        type=_number(int, 1),
        default=2000,
        help="most messages per catalog transaction (2000)",
    )
    cli_observability.add_worker_options(kafka, _number(int, 1, 65535))  # --metrics-port
    kafka.set_defaults(func=commands.cmd_ingest_kafka)
    mongo = isub.add_parser("mongo", help="migrate runs from a Databroker MongoDB database")
    mongo.add_argument(
        "--uri",
        required=True,
        metavar="MONGODB_URI",
        help="the metadatastore database, e.g. mongodb://host:27017/metadatastore",
    )
    mongo.add_argument(
        "--assets-uri",
        metavar="MONGODB_URI",
        help="the asset registry database (resources, datums), if it is another",
    )
    _add_catalog(mongo)
    _add_data_root(mongo)
    mongo.add_argument(
        "--path",
        metavar="CATALOG_PATH",
        required=True,
        help="catalog path for the runs, e.g. csx/raw",
    )
    mongo.add_argument("--since", metavar="TIME", help="runs started at or after (ISO date or s)")
    mongo.add_argument("--until", metavar="TIME", help="runs started before (ISO date or s)")
    mongo.add_argument("--query", metavar="JSON", help="a MongoDB filter on the start documents")
    mongo.add_argument(
        "--root-map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="rewrite resource roots that moved (repeatable)",
    )
    mongo.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="where the JSON report goes (default mongo-migration-<time>.json)",
    )
    mongo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    mongo.set_defaults(
        func=commands.cmd_ingest_mongo,
        interrupted="runs written so far stay; the same command again continues",
    )

    cli_auth.add_api_key_parser(sub, lambda q: _add_catalog(q, DEFAULT_URI))
    cli_auth.add_login_parser(sub)  # login URL / logout URL (OpenID Connect)
    config_file.add_parser(sub)  # config check FILE

    serve = sub.add_parser("serve", help="serve a catalog over HTTP")
    config_file.add_config_option(serve)
    _add_server_options(serve, free_port=False)
    _add_folder_options(serve)
    serve.add_argument(
        "--root-map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="where detector files moved to (repeatable)",
    )
    serve.add_argument(
        "--kafka",
        metavar="HOST:PORT",
        type=_servers,
        help="also ingest from this Kafka broker, in this process",
    )
    serve.add_argument("--topic", metavar="REGEX_OR_NAME", help="topics to ingest (with --kafka)")
    _add_kafka_options(serve)
    serve.add_argument(
        "--live-queue-limit",
        metavar="N",
        type=_number(int, 1),
        default=1000,
        help="disconnect a live subscriber this many messages behind (1000)",
    )
    serve.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change one of the server's limits (repeatable), e.g. max_body_bytes=268435456 or "
        "search_timeout=30; the names and defaults are in docs/http-api.md (Limits)",
    )
    cli_observability.add_serve_options(serve)  # --log-format, --metrics-public
    serve.set_defaults(func=commands.cmd_serve)

    demo = sub.add_parser(
        "demo",
        help="serve the embedded catalog while a simulated beamline acquires runs into it",
        description="Serve a catalog while a simulated beamline (a real RunEngine driving "
        "ophyd.sim devices and HDF5-writing detectors) acquires a run every --interval "
        "seconds, until Ctrl-C. A run takes about 50 KB of disk. Started again, it goes on "
        "with the next scan_id.",
    )
    _add_server_options(demo, free_port=True)
    demo.add_argument(
        "--data-dir",
        metavar="DIR",
        type=Path,
        default=DEFAULT_DATA / "files",
        help=f"where the simulated detectors write HDF5 files ({DEFAULT_DATA / 'files'})",
    )
    demo.add_argument(
        "--runs",
        metavar="N",
        type=_number(int, 1),
        default=None,
        help="stop after N runs (default: never)",
    )
    demo.add_argument(
        "--interval",
        metavar="SECONDS",
        type=_number(float, 0, 86400),
        default=3.0,
        help="seconds between runs, up to a day (3)",
    )
    demo.add_argument(
        "--keep-serving", action="store_true", help="with --runs, keep serving after the last run"
    )
    demo.set_defaults(func=commands.cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    from .cli_errors import explain, hide_secrets, secrets_of

    args = parser().parse_args(argv)
    os.environ.setdefault("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT)
    secrets: list[str] = []
    try:
        # serve, ingest kafka: --config FILE and $BLUEBROKER_<SECTION>_<KEY> under the options
        config_file.configure(args, argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
        )
        secrets += secrets_of(vars(args).values())
        secrets += [getattr(args, k, None) or "" for k in ("api_key", "oidc_client_secret")]
        for item in getattr(args, "consumer_config", []):  # sasl_plain_password=... and the like
            key, _, value = item.partition("=")
            if re.search(r"password|secret|token|key", key, re.IGNORECASE):
                secrets.append(value)
        return args.func(args)
    except KeyboardInterrupt:
        hint = getattr(args, "interrupted", None)
        print(f"interrupted{'; ' + hint if hint else ''}", file=sys.stderr)
        return 130
    except Exception as err:
        line = None if args.debug else explain(err)
        if line is None:
            raise
        print("error: " + hide_secrets(" ".join(line.split()), secrets), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The ``bluebroker`` command. Each subcommand imports only what it needs, so the client-only
install stays light and a typo gets an answer fast."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path("bluebroker-data")
DEFAULT_URI = f"sqlite:///{DEFAULT_DATA / 'catalog.db'}"


def _catalog(args: argparse.Namespace) -> int:
    from bluebroker.catalog import open_catalog
    from bluebroker.catalog.schema import SCHEMA_VERSION, current_version, upgrade

    cat = open_catalog(args.uri, create=False) if args.action == "info" else None
    if cat is None:
        from bluebroker.catalog.tree import Catalog

        cat = Catalog(args.uri)
        with cat.engine.begin() as conn:
            before = current_version(conn)
            if args.action == "init" and before is not None:
                print(f"{args.uri}: already initialized (schema version {before})")
                return 0
            if args.action == "upgrade" and before is None:
                print(
                    f"error: {args.uri} has no catalog yet; run: bluebroker catalog init "
                    f"{args.uri}",
                    file=sys.stderr,
                )
                return 2
            _, after = upgrade(conn)
        print(f"{args.uri}: schema version {before or 'none'} -> {after}")
        return 0
    with cat.engine.connect() as conn:
        version = current_version(conn)
    print(f"{cat.uri}: schema version {version} (this bluebroker: {SCHEMA_VERSION})")
    for path in sorted(cat.catalog_paths()):
        print(f"  /{path}: {len(cat[path])} runs")
    return 0


def _ingest_file(args: argparse.Namespace) -> int:
    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.files import replay

    missing = [p for p in args.paths if not p.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    writer = CatalogWriter(args.catalog, args.path)
    report = replay(args.paths, writer, show_progress=not args.quiet)
    for where, rejected in report.rejected:
        print(f"refused {where}: {rejected.error}", file=sys.stderr)
    print(
        f"{report.written} documents written, {report.duplicates} already present, "
        f"{len(report.rejected)} refused, into /{writer.path} of {writer.catalog.uri}"
    )
    return 1 if report.rejected else 0


def _config_items(items: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs, with numbers and booleans as such (kafka-python wants them so)."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --consumer-config takes KEY=VALUE, got {item!r}")
        if value.lstrip("-").isdigit():
            out[key] = int(value)
        elif value.lower() in ("true", "false"):
            out[key] = value.lower() == "true"
        else:
            out[key] = value
    return out


def _ingest_kafka(args: argparse.Namespace) -> int:
    from bluebroker.catalog import open_catalog
    from bluebroker.ingest.consumer import KafkaIngestWorker, tune_gc_for_ingest

    logging.getLogger("bluebroker").setLevel(logging.INFO)
    tune_gc_for_ingest()
    worker = KafkaIngestWorker(
        open_catalog(args.catalog),
        args.bootstrap_servers,
        args.topic,
        group_id=args.group_id,
        catalog_path_template=args.catalog_path_template,
        dead_letter_topic=args.dead_letter_topic,
        batch_size=args.batch_size,
        consumer_config=_config_items(args.consumer_config),
    )
    worker.install_signal_handlers()
    counters = worker.run()
    print(f"stopped: {counters.line()}")
    return 0


def _root_map(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise SystemExit(f"error: --root-map takes OLD=NEW, got {item!r}")
        out[old] = new
    return out


def _serve(args: argparse.Namespace) -> int:
    from bluebroker.catalog import open_catalog
    from bluebroker.server.run import serve

    catalog = open_catalog(args.catalog, root_map=_root_map(args.root_map))
    kafka = None
    if args.kafka:
        if not args.topic:
            raise SystemExit("error: --kafka needs --topic (a name or a regular expression)")
        logging.getLogger("bluebroker").setLevel(logging.INFO)
        kafka = {
            "bootstrap_servers": args.kafka,
            "topic": args.topic,
            "group_id": args.group_id,
            "catalog_path_template": args.catalog_path_template,
            "consumer_config": _config_items(args.consumer_config),
        }
    serve(
        catalog,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        kafka=kafka,
        live_queue_limit=args.live_queue_limit,
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.demo import acquire
    from bluebroker.server.run import background_server

    writer = CatalogWriter(args.catalog, "bmm/raw")
    with background_server(writer.catalog, args.host, args.port, args.api_key) as url:
        print(f"serving {writer.catalog.uri} at {url}  (API docs: {url}/docs)")
        print(
            f"  python: from bluebroker.client import from_uri; "
            f"from_uri('{url}')['bmm']['raw'].values().last()"
        )
        print(f"  shell:  curl -g '{url}/api/v1/search/bmm/raw?page[limit]=3'")
        print(
            f"acquiring simulated runs into /bmm/raw (detector files in {args.data_dir}); "
            "Ctrl-C to stop",
            flush=True,
        )
        try:
            acquire(writer, args.data_dir.resolve(), args.runs, args.interval)
            if args.runs is not None and args.keep_serving:
                print("done acquiring; still serving, Ctrl-C to stop", flush=True)
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped")
    return 0


def _add_server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catalog", default=DEFAULT_URI, help=f"catalog URI ({DEFAULT_URI})")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (8000)")
    p.add_argument(
        "--api-key",
        default=os.environ.get("BLUEBROKER_API_KEY"),
        help="require this key from every client (or $BLUEBROKER_API_KEY)",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bluebroker", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log what is happening")
    sub = p.add_subparsers(dest="command", required=True)

    cat = sub.add_parser("catalog", help="create, upgrade or inspect a catalog database")
    cat.add_argument("action", choices=["init", "upgrade", "info"])
    cat.add_argument("uri", help="sqlite:///path/catalog.db or postgresql://user@host/db")
    cat.set_defaults(func=_catalog)

    ingest = sub.add_parser("ingest", help="write documents into a catalog")
    isub = ingest.add_subparsers(dest="source", required=True)
    files = isub.add_parser("file", help="replay JSON Lines or msgpack document files")
    files.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    files.add_argument("--catalog", required=True, help="catalog URI")
    files.add_argument("--path", default="raw", help="catalog path for the runs (default raw)")
    files.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    files.set_defaults(func=_ingest_file)
    kafka = isub.add_parser("kafka", help="consume document topics from Kafka (a worker)")
    kafka.add_argument("--bootstrap-servers", required=True, metavar="HOST:PORT")
    kafka.add_argument(
        "--topic",
        required=True,
        metavar="REGEX_OR_NAME",
        help="a topic, or a regular expression such as '.*bluebroker.*'",
    )
    kafka.add_argument("--catalog", required=True, help="catalog URI")
    kafka.add_argument("--group-id", default="bluebroker-ingest")
    kafka.add_argument(
        "--catalog-path-template",
        default="{beamline}/raw",
        help="catalog path per topic ({beamline} is the topic's first part)",
    )
    kafka.add_argument("--dead-letter-topic", default="bluebroker.dead-letters")
    kafka.add_argument(
        "--batch-size", type=int, default=2000, help="most messages per catalog transaction"
    )
    kafka.add_argument(
        "--consumer-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra kafka-python consumer settings (repeatable)",
    )
    kafka.set_defaults(func=_ingest_kafka)

    serve = sub.add_parser("serve", help="serve a catalog over HTTP")
    _add_server_options(serve)
    serve.add_argument(
        "--root-map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="where detector files moved to (repeatable)",
    )
    serve.add_argument(
        "--kafka", metavar="HOST:PORT", help="also ingest from this Kafka broker, in this process"
    )
    serve.add_argument("--topic", metavar="REGEX_OR_NAME", help="topics to ingest (with --kafka)")
    serve.add_argument("--group-id", default="bluebroker-ingest")
    serve.add_argument("--catalog-path-template", default="{beamline}/raw")
    serve.add_argument("--consumer-config", action="append", default=[], metavar="KEY=VALUE")
    serve.add_argument(
        "--live-queue-limit",
        type=int,
        default=1000,
        help="disconnect a live subscriber this many messages behind (1000)",
    )
    serve.set_defaults(func=_serve)

    demo = sub.add_parser("demo", help="serve the embedded catalog and acquire simulated runs")
    _add_server_options(demo)
    demo.add_argument(
        "--keep-serving", action="store_true", help="with --runs, keep serving after the last run"
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA / "files",
        help="where the simulated detectors write HDF5 files",
    )
    demo.add_argument("--runs", type=int, default=None, help="stop after N runs")
    demo.add_argument("--interval", type=float, default=3.0, help="seconds between runs")
    demo.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    from bluebroker.catalog import CatalogError
    from bluebroker.ingest.errors import DocumentError
    from bluebroker.ingest.files import FileFormatError

    try:
        return args.func(args)
    except (CatalogError, DocumentError, FileFormatError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

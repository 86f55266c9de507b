"""What each ``bluebroker`` subcommand does (the parser is in cli.py). Each imports only what
it needs, so the client-only install stays light and a typo gets an answer fast."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .cli_auth import auth_settings, check_exposure, sign_in_url
from .cli_errors import (
    OperatorError,
    check_listen,
    check_uri,
    existing_sqlite,
    open_for_use,
    reaching,
)
from .runtime_files import remove_token, write_token

DEAD_LETTERS = "bluebroker.dead-letters"  # the worker's default dead-letter topic


def cmd_catalog(args: argparse.Namespace) -> int:
    from bluebroker.catalog import open_catalog
    from bluebroker.catalog.schema import SCHEMA_VERSION, current_version, upgrade
    from bluebroker.catalog.tree import Catalog

    target = check_uri(args.uri)
    init = f"bluebroker catalog init {target.shown}"
    if (args.action == "backup") != (args.file is not None):
        raise OperatorError(
            "catalog backup takes URI FILE (the new file); the other actions only URI"
        )
    if args.action != "init":
        existing_sqlite(target, init)
    if args.action == "backup":
        return _backup(target, args.file)
    with reaching(target):
        if args.action == "info":
            cat = open_catalog(args.uri, create=False)
            with cat.engine.connect() as conn:
                version = current_version(conn)
            print(f"{target.shown}: schema version {version} (this bluebroker: {SCHEMA_VERSION})")
            for path in sorted(cat.catalog_paths()):
                print(f"  /{path}: {len(cat[path])} runs")
            return 0
        cat = Catalog(args.uri)
        with cat.engine.begin() as conn:
            before = current_version(conn)
            if args.action == "init" and before is not None:
                print(f"{target.shown}: already initialized (schema version {before})")
                return 0
            if args.action == "upgrade" and before is None:
                raise OperatorError(f"{target.shown} has no catalog yet; run: {init}")
            _, after = upgrade(conn)
    print(f"{target.shown}: schema version {before or 'none'} -> {after}")
    return 0


def _backup(target, file) -> int:
    from bluebroker.catalog.backup import backup_sqlite

    if target.sqlite_file is None:
        raise OperatorError(
            f"back up a PostgreSQL catalog with PostgreSQL's tools: pg_dump --format=custom "
            f"--file={file} '{target.shown}' (docs/operator-guide.md, Backups and upgrades)"
        )
    backup_sqlite(target.sqlite_file, file.expanduser().resolve())
    print(f"{target.shown}: copied to {file}")
    return 0


class _DropRefusals(logging.Filter):
    """``ingest file`` lists refusals itself, a few and a count; the writer's own line per
    refused document would bury them (a wrong file is thousands)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "refused %s"


def cmd_ingest_file(args: argparse.Namespace) -> int:
    from bluebroker.catalog.tree import check_catalog_path
    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.files import check_file, replay

    for path in args.paths:  # before a catalog is opened, let alone created
        check_file(path)
    check_catalog_path(args.path)
    writer = CatalogWriter(open_for_use(args.catalog, data_roots=args.data_root), args.path)
    if not args.verbose:
        logging.getLogger("bluebroker.ingest.writer").addFilter(_DropRefusals())
    report = replay(args.paths, writer, show_progress=not args.quiet)
    for where, rejected in report.rejected:
        print(f"refused {where}: {rejected.error}", file=sys.stderr)
    if report.refused > len(report.rejected):
        print(
            f"... and {report.refused - len(report.rejected)} more refused (-v lists them all)",
            file=sys.stderr,
        )
    print(
        f"{report.written} documents written, {report.duplicates} already present, "
        f"{report.refused} refused, into /{writer.path} of {check_uri(args.catalog).shown}"
    )
    return 1 if report.refused else 0


def cmd_ingest_mongo(args: argparse.Namespace) -> int:
    from bluebroker.ingest.mongo_cli import run

    return run(args)


def config_items(items: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs, with numbers and booleans as such (kafka-python wants them so)."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OperatorError(f"--consumer-config takes KEY=VALUE, got {item!r}")
        if re.search(r"password|username", key):  # "1234" stays text
            out[key] = value
        elif value.lstrip("-").isdigit():
            out[key] = int(value)
        elif value.lower() in ("true", "false"):
            out[key] = value.lower() == "true"
        else:
            out[key] = value
    return out


def check_kafka(topic: str, template: str, config: dict, dead_letters: str) -> None:
    """What the Kafka worker would refuse, refused before a catalog is opened or made."""
    from bluebroker.ingest.consumer import is_pattern
    from bluebroker.ingest.wire import WireError, catalog_path, topic_for

    if is_pattern(topic):
        try:
            re.compile(topic)
        except re.error as err:
            raise OperatorError(
                f"--topic {topic!r} is not a valid regular expression ({err})"
            ) from None
    try:
        catalog_path(topic_for("check"), template)
    except WireError as err:
        raise OperatorError(f"--catalog-path-template: {err}") from None
    if config.get("enable_auto_commit"):
        raise OperatorError(
            "--consumer-config enable_auto_commit would commit messages not yet written; the "
            "worker commits offsets itself, so drop that setting"
        )
    if topic == dead_letters:
        raise OperatorError(f"--topic {topic!r} is the dead-letter topic; ingest another topic")


def cmd_ingest_kafka(args: argparse.Namespace) -> int:
    from bluebroker.ingest.consumer import KafkaIngestWorker, tune_gc_for_ingest

    consumer_config = config_items(args.consumer_config)
    check_kafka(args.topic, args.catalog_path_template, consumer_config, args.dead_letter_topic)
    catalog = open_for_use(args.catalog, data_roots=args.data_root)
    logging.getLogger("bluebroker").setLevel(logging.INFO)
    tune_gc_for_ingest()
    worker = KafkaIngestWorker(
        catalog,
        args.bootstrap_servers,
        args.topic,
        group_id=args.group_id,
        catalog_path_template=args.catalog_path_template,
        dead_letter_topic=args.dead_letter_topic,
        batch_size=args.batch_size,
        consumer_config=consumer_config,
    )
    if args.metrics_port is not None:
        from bluebroker.ingest.metrics import serve_worker_metrics

        serve_worker_metrics(worker, args.metrics_host, args.metrics_port)
    worker.install_signal_handlers()
    counters = worker.run()
    print(f"stopped: {counters.line()}")
    return 0


def root_map(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise OperatorError(f"--root-map takes OLD=NEW, got {item!r}")
        out[old] = new
    return out


def cmd_serve(args: argparse.Namespace) -> int:
    kafka = None
    if args.kafka:
        if not args.topic:
            raise OperatorError("--kafka needs --topic (a name or a regular expression)")
        kafka = {
            "bootstrap_servers": args.kafka,
            "topic": args.topic,
            "group_id": args.group_id,
            "catalog_path_template": args.catalog_path_template,
            "consumer_config": config_items(args.consumer_config),
            # from --config (kafka.dead_letter_topic, kafka.batch_size); no options of their own
            "dead_letter_topic": getattr(args, "dead_letter_topic", DEAD_LETTERS),
            "batch_size": getattr(args, "batch_size", 2000),
        }
        check_kafka(
            args.topic, args.catalog_path_template, kafka["consumer_config"],
            kafka["dead_letter_topic"],
        )
    elif args.topic:
        raise OperatorError("--topic is for --kafka HOST:PORT; give both or neither")
    check_uri(args.catalog)
    folders = args.source or args.mount or args.watch  # served folders: checked first (what
    if folders:  # was typed, before the machine's state such as a port in use), then indexed
        from bluebroker.directory.serving import check_folders, mount_folders  # and mounted

        check_folders(args.source, args.mount, args.watch)
    check_listen(args.host, args.port)
    check_exposure(args.host, args.api_key, args.public, oidc=args.oidc_config)
    moved = root_map(args.root_map)
    bounds = server_limits(args.limit)
    from bluebroker.server.run import serve  # after the checks: the server takes a while

    catalog = open_for_use(args.catalog, data_roots=args.data_root, root_map=moved)
    if folders:
        mount_folders(catalog, args.source, args.mount, args.watch)
    if args.log_format == "json":
        from bluebroker.server.observability import use_json_logs

        use_json_logs(args.verbose)
    if kafka:
        logging.getLogger("bluebroker").setLevel(logging.INFO)
    auth = auth_settings(args, catalog)
    left = None if args.api_key else write_token(args.host, args.port, auth.token)
    try:
        serve(
            catalog,
            host=args.host,
            port=args.port,
            auth=auth,
            printed_url=lambda url: sign_in_url(url, auth, args.api_key),
            kafka=kafka,
            live_queue_limit=args.live_queue_limit,
            metrics_public=args.metrics_public,
            **bounds,
        )
    finally:
        remove_token(left)
    return 0


def server_limits(items: list[str]) -> dict[str, int | float]:
    """``--limit NAME=VALUE`` options as ``create_app`` keywords, checked here so that a typo
    is one line before anything is opened."""
    from bluebroker.server.limits import Limits

    fields = {f.name: f.type for f in dataclasses.fields(Limits)}
    out: dict[str, int | float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in fields:
            raise OperatorError(
                f"--limit takes NAME=VALUE with NAME one of {', '.join(fields)}; got {item!r}"
            )
        try:
            value = float(text) if fields[name] in (float, "float") else int(text)
        except ValueError:
            raise OperatorError(f"--limit {name} needs a number, got {text!r}") from None
        out[name] = value
    try:
        Limits(**out)
    except ValueError as err:
        raise OperatorError(f"--limit: {err}") from None
    return out


@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM call ``stop``; a second one quits at once."""
    signals = (signal.SIGINT, signal.SIGTERM)
    received = []

    def handler(signum: int, _frame: object) -> None:
        if received:
            os.write(2, b"quit at once\n")
            os._exit(130)
        received.append(signum)
        os.write(2, b"stopping (Ctrl-C again to quit at once)\n")
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def cmd_demo(args: argparse.Namespace) -> int:
    target = check_uri(args.catalog)
    shown = target.shown
    check_listen(args.host, args.port)
    check_exposure(args.host, args.api_key, args.public, oidc=args.oidc_config)
    data_dir = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # The demo's own detector files stay readable wherever --data-dir puts them, and so do
    # files beside a SQLite catalog, as by default.
    beside = [] if args.data_root or target.sqlite_file is None else [target.sqlite_file.parent]
    for folder in beside:
        folder.mkdir(parents=True, exist_ok=True)
    roots = [*args.data_root, *beside, data_dir]
    from bluebroker.ingest import CatalogWriter  # after the checks: these take a while
    from bluebroker.ingest.demo import Acquisition
    from bluebroker.server.run import background_server

    writer = CatalogWriter(open_for_use(args.catalog, data_roots=roots), "bmm/raw")
    acquisition = Acquisition(writer, data_dir)
    auth = auth_settings(args, writer.catalog)
    with background_server(writer.catalog, args.host, args.port, auth=auth) as url:
        port = int(url.rsplit(":", 1)[1])
        left = None if args.api_key else write_token(args.host, port, auth.token)
        try:
            # the token goes with the URLs: they are the person's way in, as Jupyter's
            open_url = sign_in_url(url, auth, args.api_key)
            query = open_url[len(url) + 1 :] if open_url != url else ""
            key = ", api_key=..." if args.api_key else ""
            print(f"serving {shown} at {open_url}  (API docs: {url}/docs)")
            # on this machine the client finds the token itself (bluebroker/runtime_files.py)
            py_url = url if left is not None else open_url
            print(
                f"  python: from bluebroker.client import from_uri; "
                f"from_uri('{py_url}'{key})['bmm']['raw'].values().last()"
            )
            header = " -H 'Authorization: Bearer ...'" if args.api_key else ""
            amp = "&" + query.lstrip("?") if query else ""
            print(f"  shell:  curl -g{header} '{url}/api/v1/search/bmm/raw?page[limit]=3{amp}'")
            print(
                f"acquiring simulated runs into /bmm/raw (detector files in {data_dir}); "
                "Ctrl-C to stop",
                flush=True,
            )
            with _stop_on_signals(acquisition.stop):
                acquisition.run(args.runs, args.interval)
                if args.runs is not None and args.keep_serving and not acquisition.stopping:
                    print("done acquiring; still serving, Ctrl-C to stop", flush=True)
                    acquisition.wait()
        finally:
            remove_token(left)
    cut = "; the run in progress was aborted (its stop document says so)"
    print(
        f"stopped after {acquisition.done} run{'' if acquisition.done == 1 else 's'}"
        f"{cut if acquisition.aborted else ''}; "
        f"the catalog stays at {shown}",
        flush=True,
    )
    return 0

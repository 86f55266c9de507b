"""``bluebroker ingest mongo``: the command around ``migrate`` (its options are in cli.py).

Everything the operator gives is checked before a catalog is opened or created: the time
bounds, the query, the root map, the catalog path, and that the MongoDB database answers and
is a metadatastore. The report goes to the terminal and, as JSON, to a file.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from bluebroker.cli_errors import OperatorError, check_uri, open_for_use

from .mongo import MongoSource, MongoSourceError, _pymongo, time_bound
from .mongo_migrate import MigrationReport, migrate

LISTED = 20  # failures shown in the terminal; the report file has them all
JAVASCRIPT = {"$where", "$function", "$accumulator"}


def _query(text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        query = json.loads(text)
    except json.JSONDecodeError as err:
        raise OperatorError(f"--query is not JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(query, dict):
        raise OperatorError(
            '--query must be a JSON object, a MongoDB filter such as \'{"plan_name": "scan"}\''
        )
    if _javascript(query):
        raise OperatorError(
            "--query may not run JavaScript on the MongoDB server ($where, $function, "
            "$accumulator); say it with query operators"
        )
    return query


def _javascript(value: object) -> bool:
    if isinstance(value, dict):
        return any(k in JAVASCRIPT or _javascript(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_javascript(v) for v in value)
    return False


def _root_map(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise OperatorError(f"--root-map takes OLD=NEW (two folders), got {item!r}")
        out[old] = new
    return out


def run(args: argparse.Namespace) -> int:
    """Run the migration the parsed ``args`` ask for; the exit code (1 if any run failed)."""
    from bluebroker.catalog.tree import check_catalog_path
    from bluebroker.ingest import CatalogWriter

    try:
        since = None if args.since is None else time_bound(args.since, "--since")
        until = None if args.until is None else time_bound(args.until, "--until")
    except MongoSourceError as err:
        raise OperatorError(str(err)) from None
    if since is not None and until is not None and until <= since:
        raise OperatorError("--until must be later than --since")
    query = _query(args.query)
    root_map = _root_map(args.root_map)
    check_catalog_path(args.path)
    report_path = args.report or Path(time.strftime("mongo-migration-%Y%m%dT%H%M%S.json"))
    if report_path.is_dir():
        raise OperatorError(f"--report {report_path} is a folder; give a file name")
    lost = (_pymongo().errors.ConnectionFailure,)
    try:
        source = MongoSource(
            args.uri,
            args.assets_uri,
            query=query,
            since=since,
            until=until,
            root_map=root_map,
        )
    except MongoSourceError as err:
        raise OperatorError(str(err)) from None
    report = MigrationReport(source=_shown(args.uri), catalog=check_uri(args.catalog).shown)
    with source:
        try:
            source.count_runs()  # a filter MongoDB refuses is said before a catalog is made
        except MongoSourceError as err:
            raise OperatorError(str(err)) from None
        writer = CatalogWriter(open_for_use(args.catalog, data_roots=args.data_root), args.path)
        if not args.verbose:  # the report lists refusals; one log line each would bury it
            logging.getLogger("bluebroker.ingest.writer").setLevel(logging.ERROR)
        try:
            migrate(source, writer, show_progress=not args.quiet, report=report)
        except KeyboardInterrupt:
            report.write(report_path)  # what was done so far, for the record
            print(f"report so far: {report_path}", file=sys.stderr)
            raise
        except MongoSourceError as err:
            raise OperatorError(str(err)) from None
        except lost as err:
            first = str(err).split(",")[0][:200]
            raise OperatorError(
                f"lost the MongoDB server ({first}); runs written so far stay, and the same "
                "command again continues"
            ) from None
    report.write(report_path)
    for failure in report.failures[:LISTED]:
        print(
            f"failed run {failure.uid} (scan {failure.scan_id}): " + "; ".join(failure.reasons),
            file=sys.stderr,
        )
    if len(report.failures) > LISTED:
        print(
            f"... and {len(report.failures) - LISTED} more failed runs (see {report_path})",
            file=sys.stderr,
        )
    print(report.summary())
    print(f"report: {report_path}")
    return 1 if report.failures else 0


def _shown(uri: str) -> str:
    """The URI without a password."""
    head, sep, tail = uri.partition("@")
    if not sep:
        return uri
    scheme, _, credentials = head.partition("://")
    user = credentials.split(":")[0]
    return f"{scheme}://{user}:***@{tail}"

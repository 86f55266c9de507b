"""Databroker 1.x configs that name a MongoDB database, opened by the facade.

Two forms are in use at facilities, and both are read:

- the catalog form (Databroker 1.x, intake-style)::

      sources:
        csx:
          driver: bluesky-mongo-normalized-catalog
          args:
            metadatastore_db: mongodb://localhost:27017/metadatastore
            asset_registry_db: mongodb://localhost:27017/assets
            root_map: {/old/root: /new/root}      # optional

- the older v0 form::

      metadatastore:
        module: databroker.headersource.mongo
        class: MDS
        config: {host: localhost, port: 27017, database: metadatastore, timezone: ...}
      assets:
        module: databroker.assets.mongo
        class: Registry
        config: {host: localhost, port: 27017, database: assets}

With a ``uri:`` line beside them (a bluebroker server, where the database was migrated
with ``bluebroker ingest mongo``), the server is read and MongoDB is not touched; ``catalog:``
then says which catalog of runs (default ``<name>/raw``). Without one, the database itself is
read: its runs are brought into a local catalog kept between sessions (under
``$BLUEBROKER_MONGO_CACHE`` or ``~/.cache/bluebroker/mongo``; only runs not yet complete there
are read again) and served to the facade by an in-process server, as ``temp()`` does. The
facade itself still speaks only HTTP.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DRIVERS = {
    "bluesky-mongo-normalized-catalog",
    "databroker._drivers.mongo_normalized.BlueskyMongoCatalog",
    "databroker._drivers.mongo_normalized:BlueskyMongoCatalog",
}
CACHE_ENV = "BLUEBROKER_MONGO_CACHE"


@dataclass
class MongoSettings:
    """Where a legacy config's runs are: the two databases and how resource roots moved."""

    metadatastore: str
    assets: str
    root_map: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None


def _v0_uri(part: Any, what: str) -> str:
    """``mongodb://host:port/database`` from a v0 config's ``config:`` mapping."""
    if not isinstance(part, dict) or not isinstance(part.get("config"), dict):
        raise ValueError(f"the config's {what}: should hold config: {{host, port, database}}")
    conf = part["config"]
    if conf.get("uri"):
        return str(conf["uri"])
    if not conf.get("database"):
        raise ValueError(f"the config's {what}: config: names no database")
    host = conf.get("host", "localhost")
    port = conf.get("port", 27017)
    return f"mongodb://{host}:{port}/{conf['database']}"


def _source(config: dict, name: str | None) -> dict | None:
    """The config's mongo_normalized source: the one named ``name``, or the only one."""
    sources = config.get("sources")
    if not isinstance(sources, dict):
        return None
    mongo = {k: v for k, v in sources.items() if isinstance(v, dict) and v.get("driver") in DRIVERS}
    if name in mongo:
        return mongo[name]
    if len(mongo) == 1:
        return next(iter(mongo.values()))
    if mongo:
        raise ValueError(
            f"the config has several MongoDB catalogs ({', '.join(sorted(mongo))}) and none "
            f"named {name!r}"
        )
    return None


def mongo_settings(config: dict, name: str | None = None) -> MongoSettings | None:
    """The MongoDB a legacy config names, or None when it names none."""
    source = _source(config, name)
    if source is not None:
        args = source.get("args") or {}
        missing = [k for k in ("metadatastore_db", "asset_registry_db") if not args.get(k)]
        if missing:
            raise ValueError(
                f"the config's {source.get('driver')} source lacks {', '.join(missing)} "
                "(mongodb://host:27017/database URIs)"
            )
        return MongoSettings(
            str(args["metadatastore_db"]),
            str(args["asset_registry_db"]),
            dict(args.get("root_map") or {}),
        )
    if "metadatastore" in config or "assets" in config:
        mds = config.get("metadatastore")
        assets = config.get("assets", mds)
        timezone = (mds or {}).get("config", {}).get("timezone") if isinstance(mds, dict) else None
        return MongoSettings(
            _v0_uri(mds, "metadatastore"),
            _v0_uri(assets, "assets"),
            dict(config.get("root_map") or {}),
            timezone,
        )
    return None


def cache_folder(settings: MongoSettings) -> Path:
    """The local catalog kept for these databases (one per pair, whatever the config's name)."""
    base = os.environ.get(CACHE_ENV) or Path("~/.cache/bluebroker/mongo").expanduser()
    key = hashlib.sha256(f"{settings.metadatastore}\n{settings.assets}".encode()).hexdigest()
    return Path(base) / key[:16]


_servers: dict[Path, Any] = {}
_lock = threading.Lock()


def resolve(config: dict, name: str | None = None) -> dict:
    """A config naming MongoDB made into a bluebroker one (``uri``, ``catalog``); any other
    config is returned as it is."""
    settings = mongo_settings(config, name)
    if settings is None:
        return config
    catalog = config.get("catalog") or f"{name or 'mongo'}/raw"
    out = {**config, "catalog": catalog}
    if settings.timezone and not config.get("timezone"):
        out["timezone"] = settings.timezone
    if config.get("uri"):  # migrated: the bluebroker server is read
        return out
    out["uri"] = serve_mongo(settings, catalog)
    return out


def serve_mongo(settings: MongoSettings, catalog_path: str) -> str:
    """The URL of an in-process server over the local catalog of ``settings``' runs, brought
    up to date first (see the module docstring). One server per database pair per process."""
    folder = cache_folder(settings)
    with _lock:
        if folder in _servers:
            return _servers[folder].uri
        try:
            from bluebroker.catalog import open_catalog
            from bluebroker.ingest import CatalogWriter
            from bluebroker.ingest.mongo import MongoSource
            from bluebroker.ingest.mongo_migrate import migrate
            from bluebroker.server.run import background_server
        except ImportError as err:
            raise ImportError(
                f"reading a MongoDB config needs the server and ingest extras ({err}); "
                "pip install 'bluebroker[server]'"
            ) from None
        folder.mkdir(parents=True, exist_ok=True)
        with MongoSource(
            settings.metadatastore,
            settings.assets,
            root_map=settings.root_map,
            names=("the config's metadatastore_db", "the config's asset_registry_db"),
        ) as source:
            roots = _roots(source, folder)
            catalog = open_catalog(f"sqlite:///{folder}/catalog.db", data_roots=roots)
            writer = CatalogWriter(catalog, catalog_path)
            report = migrate(source, writer, show_progress=sys.stderr.isatty())
        if report.failures:
            first = report.failures[0]
            print(
                f"warning: {len(report.failures)} runs of {settings.metadatastore} could not "
                f"be read (first: {first.uid}: {first.reasons[0]})",
                file=sys.stderr,
            )
        server = _Served(catalog, background_server(catalog))
        _servers[folder] = server
        return server.uri


def _roots(source: Any, folder: Path) -> list[Path]:
    """The folders detector files may be read from: the resources' roots (after the root
    map) — the database's owner put them there — and the local catalog's own folder."""
    roots = {folder}
    for root in source.assets["resource"].distinct("root"):
        if isinstance(root, str) and root:
            roots.add(Path(source.root_map.get(root, root)))
    return sorted(roots)


class _Served:
    """A catalog served from a background thread until the interpreter exits."""

    def __init__(self, catalog: Any, serving: Any) -> None:
        import atexit

        self.catalog = catalog
        self._serving = serving
        self.uri: str = serving.__enter__()
        atexit.register(self.close)

    def close(self) -> None:
        self._serving.__exit__(None, None, None)
        self.catalog.close()

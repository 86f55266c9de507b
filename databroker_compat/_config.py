"""Where ``Broker.named(name)`` finds ``{name}.yml``, and what a bluebroker config holds.

The search order is Databroker 1.2.5's: the user's ``~/.config/databroker``, then the
Python environment's ``{sys.prefix}/etc/databroker``, then ``/etc/databroker``. A config
names the server and the catalog of runs on it::

    description: CSX raw data          # optional
    uri: https://bluebroker.example.org
    catalog: csx/raw
    api_key: ...                       # optional; else $BLUEBROKER_API_KEY
    timezone: America/New_York         # optional; for since/until and table times

Databroker 1.x configs that name a MongoDB database (``driver:
bluesky-mongo-normalized-catalog`` sources, or the v0 ``metadatastore:``/``assets:`` form)
are read too: see ``_mongo_config``. Intake catalog files holding ``sources:`` are found in
intake's folders as Databroker 1.x's ``databroker.catalog`` found them.
"""

from __future__ import annotations

import collections
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REQUIRED = ("uri", "catalog")


def config_search_path() -> tuple[Path, ...]:
    """The folders searched, in order (read at call time, so ``$HOME`` changes count)."""
    if os.name == "nt":
        return (Path(os.environ.get("APPDATA", "~")).expanduser() / "databroker",)
    return (
        Path("~").expanduser() / ".config" / "databroker",
        Path(sys.prefix) / "etc" / "databroker",
        Path("/etc/databroker"),
    )


def catalog_search_path() -> tuple[Path, ...]:
    """Where Databroker 1.x's ``databroker.catalog`` found intake catalog files (``sources:``):
    ``$INTAKE_PATH``, the user's ``~/.local/share/intake``, then ``{sys.prefix}/share/intake``."""
    extra = [Path(p) for p in os.environ.get("INTAKE_PATH", "").split(os.pathsep) if p]
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path("~").expanduser() / ".local/share")
    return (*extra, data_home / "intake", Path(sys.prefix) / "share" / "intake")


def _load(path: Path) -> dict[str, Any]:
    import yaml

    with open(path) as f:
        try:
            config = yaml.safe_load(f)
        except yaml.YAMLError as err:
            raise ValueError(f"{path} is not YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} should hold a mapping (uri:, catalog:, ... or sources:)")
    return config


def _catalog_files() -> Iterator[Path]:
    for folder in catalog_search_path():
        if folder.is_dir():
            yield from sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml"))


def _sources_of(path: Path) -> dict[str, Any]:
    try:
        sources = _load(path).get("sources")
    except (OSError, ValueError):
        return {}
    return sources if isinstance(sources, dict) else {}


def lookup_config(name: str) -> dict[str, Any]:
    """The parsed ``{name}.yml`` from the first folder that has it, else the intake catalog
    file (Databroker 1.x's v2 configs) with a source of that name; FileNotFoundError lists
    every place looked at."""
    filename = name if name.endswith(".yml") else f"{name}.yml"
    tried = []
    for folder in config_search_path():
        path = folder / filename
        tried.append(str(path))
        if path.is_file():
            return _load(path)
    for path in _catalog_files():
        sources = _sources_of(path)
        if name in sources:
            return {"sources": {name: sources[name]}}
    tried += [f"{folder}/*.yml (intake catalogs)" for folder in catalog_search_path()]
    raise FileNotFoundError(
        f"No config file named {filename!r} could be found in the following locations:\n"
        + "\n".join(tried)
    )


def list_configs() -> list[str]:
    """Names of the configs found (a name in several folders is listed once, with a warning),
    with the sources of intake catalog files."""
    names = [
        p.stem for folder in config_search_path() if folder.is_dir() for p in folder.glob("*.yml")
    ]
    names += [name for path in _catalog_files() for name in _sources_of(path)]
    duplicates = [n for n, count in collections.Counter(names).items() if count > 1]
    if duplicates:
        warnings.warn(f"Duplicate configs found: {duplicates}", UserWarning, stacklevel=2)
    return sorted(set(names))


def describe_configs() -> dict[str, str | None]:
    """Each config's name and its ``description``."""
    return {name: lookup_config(name).get("description") for name in list_configs()}


def check_config(
    config: dict[str, Any], where: str = "the config", name: str | None = None
) -> dict[str, Any]:
    """The config, or a ValueError saying which key is missing and what it should hold. A
    Databroker 1.x config naming a MongoDB database is made into a bluebroker one first
    (``_mongo_config``)."""
    if not isinstance(config, dict):
        raise TypeError(f"{where} should be a mapping with uri: and catalog:, not {config!r}")
    from ._mongo_config import resolve

    config = resolve(config, name)
    missing = [k for k in REQUIRED if not config.get(k)]
    if missing:
        raise ValueError(
            f"{where} lacks {', '.join(missing)}: a bluebroker config says where the server is "
            "(uri: https://host:8000) and which catalog of runs (catalog: csx/raw)"
        )
    return config

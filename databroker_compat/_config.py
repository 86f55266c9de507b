"""Where ``Broker.named(name)`` finds ``{name}.yml``, and what a bluebroker config holds.

The search order is Databroker 1.2.5's: the user's ``~/.config/databroker``, then the
Python environment's ``{sys.prefix}/etc/databroker``, then ``/etc/databroker``. A config
names the server and the catalog of runs on it::

    description: CSX raw data          # optional
    uri: https://bluebroker.example.org
    catalog: csx/raw
    api_key: ...                       # optional; else $BLUEBROKER_API_KEY
    timezone: America/New_York         # optional; for since/until and table times
"""

from __future__ import annotations

import collections
import os
import sys
import warnings
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


def lookup_config(name: str) -> dict[str, Any]:
    """The parsed ``{name}.yml`` from the first folder that has it; FileNotFoundError lists
    every place looked at."""
    import yaml

    filename = name if name.endswith(".yml") else f"{name}.yml"
    tried = []
    for folder in config_search_path():
        path = folder / filename
        tried.append(str(path))
        if path.is_file():
            with open(path) as f:
                config = yaml.safe_load(f)
            if not isinstance(config, dict):
                raise ValueError(f"{path} should hold a mapping (uri:, catalog:, ...)")
            return config
    raise FileNotFoundError(
        f"No config file named {filename!r} could be found in the following locations:\n"
        + "\n".join(tried)
    )


def list_configs() -> list[str]:
    """Names of the configs found (a name in several folders is listed once, with a warning)."""
    names = [
        p.stem for folder in config_search_path() if folder.is_dir() for p in folder.glob("*.yml")
    ]
    duplicates = [n for n, count in collections.Counter(names).items() if count > 1]
    if duplicates:
        warnings.warn(f"Duplicate configs found: {duplicates}", UserWarning, stacklevel=2)
    return sorted(set(names))


def describe_configs() -> dict[str, str | None]:
    """Each config's name and its ``description``."""
    return {name: lookup_config(name).get("description") for name in list_configs()}


def check_config(config: dict[str, Any], where: str = "the config") -> dict[str, Any]:
    """The config, or a ValueError saying which key is missing and what it should hold."""
    if not isinstance(config, dict):
        raise TypeError(f"{where} should be a mapping with uri: and catalog:, not {config!r}")
    missing = [k for k in REQUIRED if not config.get(k)]
    if missing:
        raise ValueError(
            f"{where} lacks {', '.join(missing)}: a bluebroker config says where the server is "
            "(uri: https://host:8000) and which catalog of runs (catalog: csx/raw)"
        )
    return config

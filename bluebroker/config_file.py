"""One configuration file (YAML) for ``bluebroker serve`` and ``bluebroker ingest kafka``.

A facility runs the same settings on many processes (several servers, several ingest workers)
and in containers, where a file plus a few environment variables is the usual way in. Every
key here is also ``BLUEBROKER_<SECTION>_<KEY>`` in the environment, and a command-line option
beats both: command line > environment > file > built-in default. The schema below is the one
list of keys; ``docs/configuration.md`` documents every one of them (a test checks that).

Mistakes are one line that names the key and shows the fix, before anything is opened.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cli_errors import OperatorError, hide_password
from .config_keys import _NAME, _SECURITY, _SERVER, ENV_PREFIX, KAFKA, SERVE, Key, keys

# -- reading and checking ------------------------------------------------------------------


def _fail(key: Key, what: str) -> OperatorError:
    return OperatorError(f"{key.path}: {what}; e.g. {key.example}")


def _got(value: object) -> str:
    kinds = {bool: "true/false", int: "a number", float: "a number", list: "a list",
             dict: "a mapping", type(None): "nothing"}
    shown = f" {value!r:.60}" if isinstance(value, int | float) else ""
    return kinds.get(type(value), "text") + shown


def check_value(key: Key, value: object, from_env: bool = False) -> object:
    """``value`` as the option wants it, or one line naming the key and the fix."""
    if from_env and key.kind not in ("text", "choice"):
        value = _env_value(key, value)
    if key.kind in ("text", "choice"):
        if not isinstance(value, str) or not value.strip():
            raise _fail(key, f"expected text, got {_got(value)}")
        if key.choices and value not in key.choices:
            raise _fail(key, f"{value!r} is not one of {', '.join(key.choices)}")
        return value
    if key.kind == "bool":
        if not isinstance(value, bool):
            raise _fail(key, f"expected true or false, got {_got(value)}")
        return value
    if key.kind in ("int", "number"):
        ok = int if key.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok):
            noun = "a whole number" if key.kind == "int" else "a number"
            raise _fail(key, f"expected {noun}, got {_got(value)}")
        if not key.low <= value <= key.high:
            raise _fail(key, f"{value} is out of range ({key.low:g} to {key.high:g})")
        return value
    if key.kind in ("list", "servers"):
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise _fail(key, f"expected a list of text, got {_got(value)}")
        items = [i.strip() for i in items if i.strip()]
        if key.kind == "servers":
            bad = [i for i in items if not _SERVER.fullmatch(i)]
            if bad or not items:
                raise _fail(key, f"{(bad or [''])[0]!r} is not HOST:PORT")
        return items
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _fail(key, f"expected a mapping of NAME: VALUE, got {_got(value)}")
    for name, item in value.items():
        if isinstance(item, dict | list) or item is None:
            raise _fail(key, f"{name}: expected one value, got {_got(item)}")
        if key.path == "mounts" and not _NAME.fullmatch(name):
            raise _fail(key, f"name {name!r} must be letters, digits, '_', '.' or '-'")
    return dict(value)


def _env_value(key: Key, text: object) -> object:
    """An environment value read as YAML (8000 a number, true a boolean, [a, b] a list), lists
    also as comma-separated text."""
    import yaml

    try:
        value = yaml.safe_load(str(text))
    except yaml.YAMLError:
        raise OperatorError(f"${key.env}: {text!r:.80} is not a YAML value") from None
    return text if key.kind in ("list", "servers") and isinstance(value, str) else value


def _unknown(where: str, name: str, known: list[str]) -> OperatorError:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"did you mean {where}{close[0]}?" if close else f"known: {', '.join(known)}"
    return OperatorError(f"{where}{name}: unknown key; {hint}")


def _flatten(data: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every setting in a parsed file; unknown keys are refused."""
    by_path = {k.path: k for k in keys()}
    sections = sorted({k.path.split(".")[0] for k in keys()})
    for top, body in data.items():
        if not isinstance(top, str) or top not in sections:
            raise _unknown("", str(top), sections)
        if top in by_path:  # mounts: a mapping of its own
            if body is not None:
                yield top, body
            continue
        if body is None:  # a section with every key commented out
            continue
        if not isinstance(body, dict):
            raise OperatorError(f"{top}: expected a mapping of settings, got {_got(body)}")
        for name, value in body.items():
            path = f"{top}.{name}"
            if path == "kafka.security":
                if not isinstance(value, dict):
                    raise OperatorError(f"{path}: expected a mapping, got {_got(value)}")
                for sub, item in value.items():
                    if f"{path}.{sub}" not in by_path:
                        raise _unknown(f"{path}.", str(sub), [n for n, _, _ in _SECURITY])
                    yield f"{path}.{sub}", item
            elif path in by_path:
                yield path, value
            else:
                known = [k.name for k in keys() if k.section == top] + (
                    ["security"] if top == "kafka" else []
                )
                raise _unknown(f"{top}.", str(name), known)


def _unknown_variables(environ: Mapping[str, str]) -> None:
    """A misspelt ``BLUEBROKER_<SECTION>_<KEY>`` would be ignored silently: refused instead
    (variables outside the sections, such as ``BLUEBROKER_API_KEY``, are not ours to judge)."""
    names = [k.env for k in keys()]
    sections = {ENV_PREFIX + k.path.split(".")[0].upper() + "_" for k in keys()}
    for name in environ:
        if name in names or name.startswith(ENV_PREFIX + "MOUNTS_"):
            continue
        if any(name.startswith(section) for section in sections):
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
            hint = f"did you mean ${close[0]}?" if close else "see docs/configuration.md"
            raise OperatorError(f"${name}: no such setting; {hint}")


@dataclass
class Settings:
    """The effective settings: ``values`` by dotted path, and where each came from."""

    values: dict[str, Any]
    sources: dict[str, str]  # path -> "file", "$ENV" or "default"


def load(path: str | None, environ: Mapping[str, str] | None = None) -> Settings:
    """The file (if any) with the environment's overrides, every value checked."""
    import yaml

    environ = os.environ if environ is None else environ
    data: dict = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise OperatorError(f"--config {path}: cannot read it ({err.strerror})") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            where = getattr(err, "problem_mark", None)
            line = f" at line {where.line + 1}" if where else ""
            raise OperatorError(f"--config {path}: not valid YAML{line}") from None
        if not isinstance(data, dict):
            raise OperatorError(f"--config {path}: expected a mapping of sections at the top")
    by_path = {k.path: k for k in keys()}
    values = {k.path: k.default for k in keys()}
    sources = {k.path: "default" for k in keys()}
    for dotted, value in _flatten(data):
        values[dotted] = check_value(by_path[dotted], value)
        sources[dotted] = "file"
    _unknown_variables(environ)
    for key in keys():
        if key.env in environ:
            values[key.path] = check_value(key, environ[key.env], from_env=True)
            sources[key.path] = "$" + key.env
    mounts = {k[len(ENV_PREFIX + "MOUNTS_"):].lower(): v for k, v in environ.items()
              if k.startswith(ENV_PREFIX + "MOUNTS_")}
    if mounts:
        values["mounts"] = {**values["mounts"], **check_value(by_path["mounts"], mounts)}
        sources["mounts"] = "$" + ENV_PREFIX + "MOUNTS_<NAME>"
    return Settings(values, sources)


# -- onto the command line ------------------------------------------------------------------


def given_on_command_line(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The option destinations the command line itself set (a default is not given)."""

    def suppress(p: argparse.ArgumentParser) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    suppress(sub)
            else:
                action.default = argparse.SUPPRESS

    suppress(parser)
    return set(vars(parser.parse_args(argv)))


def _pairs(mapping: Mapping[str, object]) -> list[str]:
    return [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in mapping.items()]


def apply(args: argparse.Namespace, command: str, given: set[str],
          environ: Mapping[str, str] | None = None) -> Settings:
    """Fill ``args`` from the file and the environment where the command line said nothing.

    Repeatable options add to the file's lists; ``NAME=VALUE`` ones (``--limit``,
    ``--mount``, ``--consumer-config``, ``--root-map``) replace the file's entry of that NAME.
    """
    settings = load(getattr(args, "config", None), environ)
    values = settings.values
    if os.environ.get("BLUEBROKER_API_KEY") is not None:
        given.add("api_key")  # the older variable is as good as the option
    # serve reads the kafka section only to ingest in its own process (server.ingest)
    kafka = command == KAFKA or values["server.ingest"] or "kafka" in given
    pairs: dict[str, dict[str, object]] = {}
    for key in keys():
        value = values[key.path]
        if command not in key.commands or value is None or settings.sources[key.path] == "default":
            continue
        if key.path.startswith("kafka.") and not kafka:
            continue
        if key.section == "kafka.security":  # kafka-python's own settings
            pairs.setdefault("consumer_config", {})[key.name] = value
        elif key.dest is None or (command == SERVE and key.dest == "bootstrap_servers"):
            continue
        elif key.kind == "mapping":
            pairs.setdefault(key.dest, {}).update(value)
        elif key.dest == "limit":
            pairs.setdefault(key.dest, {})[key.name] = value
        elif key.kind == "list":
            value = [_folder(key, v) for v in value] if key.dest == "data_root" else value
            setattr(args, key.dest, [*value, *(getattr(args, key.dest, None) or [])])
        elif key.dest not in given:
            setattr(args, key.dest, ",".join(value) if key.kind == "servers" else value)
    for dest, mapping in pairs.items():
        mine = getattr(args, dest, None) or []
        names = {item.partition("=")[0].strip() for item in mine}
        setattr(args, dest, [*(p for p in _pairs(mapping) if p.partition("=")[0] not in names),
                             *mine])
    if command == SERVE:
        _serve_extras(args, values, given)
    return settings


def _serve_extras(args: argparse.Namespace, values: dict[str, Any], given: set[str]) -> None:
    if "api_key" not in given and values["auth.api_key_file"] and not values["auth.api_key"]:
        path = values["auth.api_key_file"]
        try:
            args.api_key = Path(path).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise OperatorError(
                f"auth.api_key_file: cannot read {path} ({err.strerror}); e.g. "
                "api_key_file: /run/secrets/bluebroker_api_key"
            ) from None
    if values["server.ingest"] and "kafka" not in given:
        if not values["kafka.bootstrap_servers"] or not values["kafka.topic"]:
            raise OperatorError(
                "server.ingest: true needs kafka.bootstrap_servers and kafka.topic; e.g. "
                "kafka: {bootstrap_servers: [kafka:9092], topic: bmm.bluesky.runengine.documents}"
            )
        args.kafka = ",".join(values["kafka.bootstrap_servers"])


def _folder(key: Key, text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise _fail(key, f"{text!r} is not an existing folder on this machine")
    return path.resolve()


# -- bluebroker config check ----------------------------------------------------------------


def add_parser(sub: Any) -> None:
    cfg = sub.add_parser("config", help="check a configuration file (see docs/configuration.md)")
    csub = cfg.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    check = csub.add_parser(
        "check",
        help="validate FILE with the environment's BLUEBROKER_<SECTION>_<KEY> overrides and "
        "print the effective settings, secrets masked",
    )
    check.add_argument("file", metavar="FILE", help="the YAML configuration file")
    check.set_defaults(func=cmd_config_check)


def add_config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("BLUEBROKER_CONFIG"),
        help="settings from a YAML file (or $BLUEBROKER_CONFIG); every key is also "
        "$BLUEBROKER_<SECTION>_<KEY>, and options given here win over both "
        "(docs/configuration.md)",
    )


def shown(key: Key, value: object) -> str:
    """A value as YAML text, secrets masked (passwords inside URIs too)."""
    import yaml

    if value is None:
        return "null"
    if key.secret:
        return "'***'"
    if isinstance(value, dict):
        value = _masked(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return hide_password(text.removesuffix("\n...").strip())


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        secret = re.compile(r"password|secret|token|key", re.IGNORECASE)
        return {
            k: "***" if secret.search(k) else hide_password(v) if isinstance(v, str) else v
            for k, v in value.items()
        }
    return value


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = load(args.file)
    by_section: dict[str, list[Key]] = {}
    for key in keys():
        by_section.setdefault(key.section or key.path, []).append(key)
    for section, members in by_section.items():
        if section == "mounts":
            print(f"mounts: {shown(members[0], settings.values['mounts'])}"
                  + _source(settings, "mounts"))
            continue
        indent = "    " if section == "kafka.security" else "  "
        print("  security:" if section == "kafka.security" else f"{section}:")
        for key in members:
            print(f"{indent}{key.name}: {shown(key, settings.values[key.path])}"
                  + _source(settings, key.path))
    print(f"# {args.file}: valid; folders and files are checked when serve or ingest starts")
    return 0


def _source(settings: Settings, path: str) -> str:
    source = settings.sources[path]
    return "" if source == "file" else f"  # {source}"


def configure(args: argparse.Namespace, argv: list[str] | None) -> None:
    """For ``serve`` and ``ingest kafka``: the file and the environment under the options."""
    import sys

    from .cli import parser

    if args.command == "serve":
        command = SERVE
    elif args.command == "ingest" and args.source == "kafka":
        command = KAFKA
    else:
        return
    given = given_on_command_line(parser(), sys.argv[1:] if argv is None else argv)
    apply(args, command, given)
    if command == KAFKA:
        for dest, option, key in (
            ("bootstrap_servers", "--bootstrap-servers HOST:PORT", "kafka.bootstrap_servers"),
            ("topic", "--topic NAME", "kafka.topic"),
            ("catalog", "--catalog URI", "catalog.uri"),
        ):
            if not getattr(args, dest, None):
                env = ENV_PREFIX + key.replace(".", "_").upper()
                raise OperatorError(
                    f"ingest kafka needs {option}, or {key} in --config FILE, or ${env}"
                )

"""Access policy: who may read which runs, from run metadata and the caller's identity.

A facility already says whose a run is in its start document (``data_session``/proposal,
``beamline``, ``cycle``) and who someone is in its login's claims (username, groups). The
policy file joins the two, in YAML::

    grants:
      - to: {groups: [bmm-staff]}          # the beamline's staff: all of its runs
        catalogs: [bmm]
      - to: {signed_in: true}              # anyone signed in: runs of their proposals,
        runs: {data_session: "{groups}"}   # whose data_session is one of their groups
      - to: {anyone: true}                 # the world, even without signing in:
        runs: {public: true}               # runs marked public

``to`` takes ``users`` (principal ids such as ``user:nsls2:alice`` or plain names),
``groups``, ``signed_in: true`` or ``anyone: true``. ``catalogs`` limits a grant to catalog
paths (and what is under them). ``runs`` maps start-document keys to a value or a list of
values (all keys must match); ``{groups}`` and ``{name}`` stand for the caller's own. A grant
without ``runs`` gives every run of its catalogs. A caller reads the union of their grants;
the owner (the single-user token) and admins read everything; nothing else is readable.

The result is SQL in every query that finds runs (``catalog/access.py``), so counts, pages and
live notices never show a run one may not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bluebroker import queries as q
from bluebroker.catalog.access import Access, Grant

from .principals import ADMIN, Principal

WHO = ("users", "groups", "signed_in", "anyone")


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the entry and the fix."""


@dataclass(frozen=True)
class Rule:
    users: frozenset[str]
    groups: frozenset[str]
    signed_in: bool
    anyone: bool
    catalogs: tuple[str, ...] | None
    runs: tuple[tuple[str, tuple[Any, ...]], ...]  # key -> allowed values (may hold templates)

    def applies_to(self, p: Principal) -> bool:
        if self.anyone:
            return True
        if p.kind == "anonymous":
            return False
        return self.signed_in or bool({p.id, p.name} & self.users or p.groups & self.groups)

    def grant_for(self, p: Principal) -> Grant | None:
        queries = []
        for key, values in self.runs:
            expanded: list[Any] = []
            for v in values:
                if v == "{groups}":
                    expanded += sorted(p.groups)
                elif v == "{name}":
                    expanded += [p.name] if p.name else []
                else:
                    expanded.append(v)
            if not expanded:
                return None  # e.g. "{groups}" for a caller in no group: nothing
            queries.append(q.In(key, tuple(dict.fromkeys(expanded))))
        return Grant(self.catalogs, tuple(queries))


class AccessPolicy:
    """Rules read from a file; :meth:`access_for` turns a caller into what they may read."""

    def __init__(self, rules: list[Rule], source: str = "") -> None:
        self.rules = rules
        self.source = source

    @classmethod
    def from_file(cls, path: str | Path) -> AccessPolicy:
        import yaml

        try:
            text = Path(path).read_text()
        except OSError as err:
            raise PolicyError(f"cannot read the access policy {path}: {err.strerror}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise PolicyError(f"{path} is not YAML: {str(err).splitlines()[0]}") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "the policy") -> AccessPolicy:
        if not isinstance(data, dict) or not isinstance(data.get("grants"), list):
            raise PolicyError(f"{source}: expected a mapping with a list under 'grants'")
        unknown = set(data) - {"grants"}
        if unknown:
            raise PolicyError(f"{source}: unknown key {sorted(unknown)[0]!r}; only 'grants'")
        return cls(
            [_rule(g, f"{source}, grant {i + 1}") for i, g in enumerate(data["grants"])], source
        )

    def access_for(self, p: Principal) -> Access | None:
        """None (everything) for the owner and admins; else the union of matching grants."""
        if p.kind == "owner" or ADMIN in p.scopes:
            return None
        grants = [g for r in self.rules if r.applies_to(p) and (g := r.grant_for(p))]
        return Access(tuple(grants), who=p.id)


def _rule(entry: Any, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise PolicyError(f"{where}: expected a mapping with 'to' (and 'catalogs', 'runs')")
    unknown = set(entry) - {"to", "catalogs", "runs"}
    if unknown:
        raise PolicyError(f"{where}: unknown key {sorted(unknown)[0]!r}; use to, catalogs, runs")
    to = entry.get("to")
    if not isinstance(to, dict) or not to or set(to) - set(WHO):
        raise PolicyError(f"{where}: 'to' needs one or more of {', '.join(WHO)}")
    users, groups = (
        _names(to.get("users"), where, "users"),
        _names(to.get("groups"), where, "groups"),
    )
    catalogs = entry.get("catalogs")
    if catalogs is not None:
        catalogs = tuple(_names(catalogs, where, "catalogs", keep_order=True))
    runs = entry.get("runs") or {}
    if not isinstance(runs, dict):
        raise PolicyError(f"{where}: 'runs' maps start-document keys to a value or a list")
    pairs = []
    for key, value in runs.items():
        values = tuple(value) if isinstance(value, list) else (value,)
        if not values or any(isinstance(v, dict | list) for v in values):
            raise PolicyError(f"{where}: runs.{key} takes a value or a list of plain values")
        try:
            q.In(key, values)  # the key and values pass the query checks
        except q.QueryError as err:
            raise PolicyError(f"{where}: runs.{key}: {err}") from None
        pairs.append((key, values))
    return Rule(
        frozenset(users),
        frozenset(groups),
        to.get("signed_in") is True,
        to.get("anyone") is True,
        catalogs,
        tuple(pairs),
    )


def _names(value: Any, where: str, what: str, keep_order: bool = False) -> Any:
    if value is None:
        return () if keep_order else frozenset()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{where}: {what} takes a list of names")
    return tuple(value) if keep_order else frozenset(value)

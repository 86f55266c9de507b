"""The corners of Databroker 1.2.5's v1 API that scripts still touch: ``db.reg`` (and its old
name ``db.fs``), the legacy document names ``insert`` took (``bulk_events``, ``bulk_datum``),
and ``export`` to another Broker.

Detector files and their handlers live on the server here (the facade only speaks HTTP), so
what 1.2.5 did to a local handler registry or to files has no effect from a client; each such
call says so (a warning, or an error where 1.2.5 would have changed files), rather than
silently doing nothing.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._broker import Broker
    from ._header import Header

ON_THE_SERVER = (
    "handlers and root_map belong to the bluebroker server here (its 'databroker.handlers' "
    "entry points and --root-map), which reads detector files for every client: {what} on "
    "the client has no effect"
)


class Registry:
    """``db.reg``: 1.2.5's asset registry accessor, whose business is the server's here."""

    @property
    def handler_reg(self) -> dict:
        """No handlers on the client: an empty mapping (the server's are in use)."""
        return {}

    @property
    def root_map(self) -> dict:
        return {}

    def register_handler(self, key: str, handler: Any, overwrite: bool = False) -> None:
        warnings.warn(ON_THE_SERVER.format(what=f"register_handler({key!r})"), stacklevel=2)

    def deregister_handler(self, key: str) -> None:
        warnings.warn(ON_THE_SERVER.format(what=f"deregister_handler({key!r})"), stacklevel=2)

    def copy_files(self, resource: dict, new_root: str, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "copy_files moves detector files, which the bluebroker server reads where they "
            "lie: copy them on the server's machine and give it --root-map OLD=NEW"
        )


def legacy_documents(name: str, doc: Any) -> list[tuple[str, dict]]:
    """``[(name, doc)]`` for ``insert``: the names documents had before pages, which 1.2.5's
    ``insert`` still took (with a warning), as the documents the server takes."""
    if name == "bulk_events":
        warnings.warn(
            "'bulk_events' is a deprecated document name; insert 'event_page' documents "
            "(or events one by one) instead",
            DeprecationWarning,
            stacklevel=3,
        )
        if not isinstance(doc, dict) or not all(isinstance(v, list) for v in doc.values()):
            raise ValueError("a bulk_events document maps descriptor uids to lists of events")
        return [("event", event) for events in doc.values() for event in events]
    if name == "bulk_datum":
        warnings.warn(
            "'bulk_datum' is a deprecated document name; insert 'datum_page' documents "
            "(or datums one by one) instead",
            DeprecationWarning,
            stacklevel=3,
        )
        try:
            ids, kwargs = doc["datum_ids"], doc["datum_kwarg_list"]
            resource = doc["resource"]
        except (KeyError, TypeError):
            raise ValueError(
                "a bulk_datum document holds 'resource', 'datum_ids' and 'datum_kwarg_list'"
            ) from None
        if len(ids) != len(kwargs):
            raise ValueError("bulk_datum's datum_ids and datum_kwarg_list differ in length")
        return [
            ("datum", {"resource": resource, "datum_id": i, "datum_kwargs": k})
            for i, k in zip(ids, kwargs, strict=True)
        ]
    return [(name, doc)]


def export(source: Broker, headers: list[Header], target: Broker, new_root: str | None) -> list:
    """Every document of ``headers`` inserted into ``target``, as 1.2.5's ``export`` did;
    ``new_root`` (moving files) is the server's business here."""
    if new_root is not None:
        raise NotImplementedError(
            "export(new_root=...) moves detector files, which the bluebroker server reads "
            "where they lie: export without new_root, then move the files on the server's "
            "machine and serve them with --root-map OLD=NEW"
        )
    for header in headers:
        docs = [(n, _plain(d)) for n, d in header._run.documents()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)  # insert's own
            target._insert_pairs(docs)
    return []


def _plain(doc: Any) -> Any:
    """A document as plain dicts and lists (the client may hand out read-only mappings)."""
    if isinstance(doc, dict):
        return {k: _plain(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [_plain(v) for v in doc]
    return doc


def _no_registry(handler_registry: Any) -> None:
    if handler_registry is not None:
        raise NotImplementedError(
            "The handler_registry must be set when the Broker is initialized, usually "
            "specified in a configuration file."
        )


def _refusal(name: str, response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"the server refused the {name} document: {response.text}"
    rejected = body.get("rejected") or []
    reason = rejected[0]["error"] if rejected else body.get("detail", body)
    return f"the server refused the {name} document: {reason}"

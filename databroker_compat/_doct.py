"""Documents as read-only dicts with attribute access, as Databroker 1.x handed them out.

``h.start.plan_name`` works and, as in 1.2.5, warns that dot access may go away; item access
(``h.start['plan_name']``) is the stable spelling. Nested dicts are wrapped too, so
``h.start.sample.name`` works where scripts relied on it.
"""

from __future__ import annotations

import html
import warnings
from typing import Any

DOCT_NAMES = {
    "resource": "Resource",
    "datum": "Datum",
    "descriptor": "Event Descriptor",
    "event": "Event",
    "start": "Run Start",
    "stop": "Run Stop",
}
_DICT_ATTRS = frozenset(dir(dict))


class DocumentIsReadOnly(TypeError):
    """Raised on any attempt to change a document handed out by the broker."""


def _kind(doc: Any) -> str:
    return object.__getattribute__(doc, "_name")  # without DeprecatedDoct's warning


def _read_only(self: Any, *args: Any, **kwargs: Any) -> None:
    raise DocumentIsReadOnly(
        f"{_kind(self)} documents are read-only; copy one with dict(doc) to change it"
    )


class Document(dict):
    """A read-only dict that knows its kind (``_name``); ``doc.key`` reads ``doc['key']``."""

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, value in dict.items(self):
            if isinstance(value, dict) and not isinstance(value, Document):
                dict.__setitem__(self, key, type(self)(name, value))
        object.__setattr__(self, "_name", name)

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(
                f"{_kind(self)} document has no key {key!r}; keys: {sorted(map(str, self))}"
            ) from None

    __setitem__ = __delitem__ = __setattr__ = __delattr__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        return (type(self), (_kind(self), dict(self)))

    def __copy__(self) -> Document:
        return type(self)(_kind(self), self)

    def __deepcopy__(self, memo: dict) -> Document:
        import copy

        return type(self)(_kind(self), copy.deepcopy(dict(self), memo))

    def to_name_dict_pair(self) -> tuple[str, dict]:
        """``(name, plain dict)``, recursively, for code that needs ordinary dicts."""
        return _kind(self), _plain(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_kind(self)!r}, {dict.__repr__(self)})"

    def _repr_html_(self) -> str:
        return _html_table(self)


class DeprecatedDoct(Document):
    """A :class:`Document` whose dot access warns (``UserWarning``), as in Databroker 1.2.5."""

    def __getattribute__(self, key: str) -> Any:
        value = super().__getattribute__(key)
        if not (key in _DICT_ATTRS or key.startswith("_")):
            warnings.warn(
                f"Dot access may be removed in a future version. Use ['{key}'] instead of .{key}",
                UserWarning,
                stacklevel=2,
            )
        if key == "_name":
            warnings.warn(
                "In a future version of databroker, plain dicts without a '_name' attribute "
                "may be returned. Do not rely on '_name'.",
                UserWarning,
                stacklevel=2,
            )
        return value

    def __getattr__(self, key: str) -> Any:
        value = Document.__getattr__(self, key)
        warnings.warn(
            f"Dot access may be removed in a future version. Use ['{key}'] instead of .{key}",
            UserWarning,
            stacklevel=2,
        )
        return value


def wrap_in_doct(name: str, doc: dict) -> Document:
    """``doc`` as a :class:`Document` named for its kind (``'start'`` -> ``'Run Start'``)."""
    return Document(DOCT_NAMES.get(name, name), doc)


def wrap_in_deprecated_doct(name: str, doc: dict) -> DeprecatedDoct:
    """``doc`` as a :class:`DeprecatedDoct`: like :func:`wrap_in_doct`, but dot access warns."""
    return DeprecatedDoct(DOCT_NAMES.get(name, name), doc)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in dict.items(value)}
    return value


def _html_table(doc: dict) -> str:
    rows = []
    for key in sorted(doc, key=str):
        value = dict.__getitem__(doc, key)
        cell = _html_table(value) if isinstance(value, dict) else html.escape(repr(value))
        rows.append(f"<tr><th>{html.escape(str(key))}</th><td>{cell}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"

"""Why a document was refused. Each message names the document and says what to fix."""

from __future__ import annotations


class DocumentError(ValueError):
    """A document the writer refuses; nothing else in the catalog is affected."""

    def __init__(self, name: str, doc: object, reason: str) -> None:
        self.name = name
        self.uid = _uid_of(doc)
        self.reason = reason
        label = f"{name} {self.uid!r}" if self.uid else name
        super().__init__(f"{label}: {reason}")


def _uid_of(doc: object) -> str | None:
    if isinstance(doc, dict):
        for key in ("uid", "datum_id"):
            if isinstance(doc.get(key), str):
                return doc[key]
    return None


class InvalidDocument(DocumentError):
    """Not a valid document of its kind (schema violation, wrong types, unknown name)."""


class UnknownParent(DocumentError):
    """The document refers to a run, descriptor or resource that was never received."""


class UidConflict(DocumentError):
    """A different document already uses this uid."""

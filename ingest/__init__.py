"""Documents in: the one writer that every source (RunEngine, Kafka, HTTP, files) feeds."""

from .errors import DocumentError, InvalidDocument, UidConflict, UnknownParent
from .writer import CatalogWriter, Rejected, WriteResult

__all__ = [
    "CatalogWriter",
    "DocumentError",
    "InvalidDocument",
    "Rejected",
    "UidConflict",
    "UnknownParent",
    "WriteResult",
]

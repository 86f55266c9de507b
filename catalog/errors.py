"""Exceptions raised by the catalog, each with a message a scientist can act on."""


class CatalogError(Exception):
    """Base class for catalog problems."""


class NotFound(CatalogError, KeyError):
    """A path, run, stream or field that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class AmbiguousKey(CatalogError, ValueError):
    """A uid prefix that matches more than one run."""


class SchemaVersionError(CatalogError):
    """The database's schema is older or newer than this version of bluebroker."""


class ExternalDataError(CatalogError):
    """External data (a detector file) cannot be read; the message names the file."""


class ExternalDataMissing(ExternalDataError, FileNotFoundError):
    """A file referenced by a resource or stream_resource is not where the document says."""


class UnknownHandler(ExternalDataError):
    """No handler is registered for a resource spec or stream_resource mimetype."""


class SourceUnavailable(CatalogError):
    """A mounted source (a MongoDB database) is not answering now (the server answers 503)."""

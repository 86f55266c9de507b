"""What one transaction of the writer carries, and what a batch reports back.

A batch's state is merged into the writer's caches only after its commit, so that a batch that
fails leaves the writer as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bluebroker.catalog.run import pack
from bluebroker.catalog.writes import WriteSession

from .errors import DocumentError, UidConflict
from .segments import DescriptorInfo, Segment


@dataclass
class Rejected:
    """A document of a batch that was not written, and why."""

    index: int
    name: str
    error: DocumentError


@dataclass
class WriteResult:
    """What a batch did: documents written, duplicates skipped, documents refused."""

    written: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)


@dataclass
class RunInfo:
    id: int
    start_digest: bytes
    stop_digest: bytes | None


class Batch:
    """State of one transaction; merged into the writer's caches only after commit."""

    def __init__(self, session: WriteSession, strict: bool, guess: bool = False) -> None:
        self.session = session
        self.strict = strict
        self.guess = guess  # append to known streams without asking (PostgreSQL)
        self.runs: dict[str, RunInfo] = {}
        self.descriptors: dict[str, DescriptorInfo] = {}
        self.resources: dict[str, int] = {}
        self.stream_resources: dict[str, tuple[int, str]] = {}
        self.segments: list[Segment] = []
        self.datums: list[tuple[int, dict, dict]] = []  # (batch index, row, log entry)
        self.log: list[dict] = []
        self.raw: dict = {}  # the document being handled, as received (legacy forms included)
        self.raw_bytes: bytes | None = None  # and its msgpack encoding, when the caller has it
        self.result = WriteResult()

    def log_doc(self, run_id: int, name: str) -> dict:
        """Queue the current document, exactly as received, for the replay log."""
        payload = self.raw_bytes if self.raw_bytes is not None else pack(self.raw)
        entry = {"run_id": run_id, "name": name, "payload": payload}
        self.log.append(entry)
        return entry


def same(batch: Batch, name: str, doc: dict, stored: bytes, new: bytes) -> None:
    """A document seen before: a duplicate if it is the same, else a uid conflict."""
    if stored != new:
        raise UidConflict(name, doc, f"a different {name} document already uses this uid")
    batch.result.duplicates += 1

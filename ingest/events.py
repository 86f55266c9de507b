"""Events and event pages: buffered per stream while a batch is read, then appended to the
stream's columns in one go (see catalog/columns.py), new, duplicate or conflicting as a whole.
"""

from __future__ import annotations

import numpy as np

from bluebroker.catalog.run import EVENT_GROUP

from .batch import Batch, Rejected
from .errors import InvalidDocument, UidConflict
from .segments import DescriptorInfo, Item, Segment, event_digest, page_digests


class EventWriting:
    """The CatalogWriter's handling of event, event_page and of flushing what they buffered."""

    _streams: dict[int, tuple[int, int]]

    def _event(self, batch: Batch, index: int, doc: dict) -> None:
        desc = self._descriptor(batch, "event", doc, doc["descriptor"])
        _check_keys("event", doc, desc, doc["data"])
        key = event_digest(
            doc["descriptor"],
            doc["uid"],
            doc["seq_num"],
            doc["time"],
            doc["data"],
            doc["timestamps"],
        )
        item = Item(index, "event", doc, [doc["uid"]], [key], batch.log_doc(desc.run_id, "event"))
        self._segment(batch, desc).add_event(item)

    def _event_page(self, batch: Batch, index: int, doc: dict) -> None:
        desc = self._descriptor(batch, "event_page", doc, doc["descriptor"])
        _check_keys("event_page", doc, desc, doc["data"])
        rows = len(doc["uid"])
        for key in ("seq_num", "time"):
            if len(doc[key]) != rows:
                raise InvalidDocument(
                    "event_page",
                    doc,
                    f"has {rows} uids but {len(doc[key])} "
                    f"{key} values; every column needs one value per event",
                )
        for part in ("data", "timestamps", "filled"):
            for key, values in doc.get(part, {}).items():
                if len(values) != rows:
                    raise InvalidDocument(
                        "event_page",
                        doc,
                        f"{part}[{key!r}] has {len(values)} values for {rows} events",
                    )
        if len(set(doc["uid"])) != rows:
            raise InvalidDocument("event_page", doc, "lists the same event uid more than once")
        digests = page_digests(doc)
        item = Item(
            index,
            "event_page",
            doc,
            list(doc["uid"]),
            digests,
            batch.log_doc(desc.run_id, "event_page"),
        )
        self._segment(batch, desc).add_page(item)

    def _segment(self, batch: Batch, desc: DescriptorInfo) -> Segment:
        if not batch.segments or batch.segments[-1].desc.id != desc.id:
            batch.segments.append(Segment(desc))
        return batch.segments[-1]

    def _flush(self, batch: Batch, strict: bool) -> None:
        self._flush_datums(batch, strict)
        segments, batch.segments = batch.segments, []
        if not segments:
            return
        session = batch.session
        ids = [s.desc.stream_id for s in segments]
        # Guess only one append per stream and transaction: its tail, read with the COMMIT,
        # then decides a merge of exactly the group that append completed.
        guess = batch.guess and not session.sqlite and len(set(ids)) == len(ids)
        guess = guess and all(self._expected(batch, i) and i not in session.tails for i in ids)
        uids = [u for s in segments for it in s.items for u in it.uids]
        # Guessing, every event is taken to be new: one that is not breaks the events
        # table's primary key, and the batch is written again with this lookup.
        stored = {} if guess else session.event_digests(uids)
        seen: dict[str, bytes] = {}
        for segment in segments:
            keep = np.ones(segment.row_count, dtype=bool)
            keys: list[tuple[str, bytes]] = []
            row = 0
            for item in segment.items:
                n = len(item.uids)
                status = _event_status(item, stored, seen)
                if status == "new":
                    keys.extend(zip(item.uids, item.digests, strict=True))
                    seen.update(zip(item.uids, item.digests, strict=True))
                else:
                    keep[row : row + n] = False
                    item.log["dropped"] = True
                    if status == "duplicate":
                        batch.result.duplicates += 1
                    else:
                        err = UidConflict(item.name, item.doc, status)
                        if strict:
                            raise err
                        batch.result.rejected.append(Rejected(item.index, item.name, err))
                row += n
            if keys:
                columns = segment.columns(None if keep.all() else keep)
                stream_id = segment.desc.stream_id
                expect = self._expected(batch, stream_id) if guess else None
                session.append(stream_id, columns, len(keys), keys, expect)

    def _expected(self, batch: Batch, stream_id: int) -> tuple[int, int] | None:
        """A stream's (row count, last change) as this transaction or the last commit left
        it, or None when unknown."""
        if stream_id in batch.session.streams:
            return batch.session.streams[stream_id]
        return self._streams.get(stream_id)


def group_events(entries: list[dict]) -> list[dict]:
    """Consecutive single events of one run share one replay-log row (their msgpack
    encodings back to back): a row per event cost more than the event's columns."""
    out: list[dict] = []
    group: list[dict] = []

    def close() -> None:
        if len(group) == 1:
            out.append(group[0])
        elif group:
            payload = b"".join(e["payload"] for e in group)
            out.append({"run_id": group[0]["run_id"], "name": EVENT_GROUP, "payload": payload})
        group.clear()

    for entry in entries:
        if entry["name"] != "event" or (group and group[0]["run_id"] != entry["run_id"]):
            close()
        if entry["name"] == "event":
            group.append(entry)
        else:
            out.append(entry)
    close()
    return out


def _event_status(item: Item, stored: dict[str, bytes], seen: dict[str, bytes]) -> str:
    """'new', 'duplicate', or the reason it conflicts with what is stored."""
    if len(item.uids) == 1:  # a single event: the common case, without the list machinery
        uid = item.uids[0]
        if uid not in stored and uid not in seen:
            return "new"
    known = [stored.get(u) or seen.get(u) for u in item.uids]
    if all(k is None for k in known):
        return "new"
    if all(k == d for k, d in zip(known, item.digests, strict=True)):
        return "duplicate"
    if any(k is None for k in known):
        return "some of these events are already stored and some are not; resend them as stored"
    return "a different event already uses this uid"


def _check_keys(name: str, doc: dict, desc: DescriptorInfo, data: dict) -> None:
    keys = data.keys()
    if keys <= desc.data_keys.keys() and keys <= doc["timestamps"].keys():
        return  # the usual case, checked with two set operations
    unknown = [k for k in data if k not in desc.data_keys]
    if unknown:
        raise InvalidDocument(
            name,
            doc,
            f"data keys {unknown} are not in its descriptor (which has {list(desc.data_keys)})",
        )
    missing_ts = [k for k in data if k not in doc["timestamps"]]
    if missing_ts:
        raise InvalidDocument(name, doc, f"data keys {missing_ts} have no timestamps")

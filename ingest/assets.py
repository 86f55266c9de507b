"""Documents that point at detector files: resource, datum, datum_page, stream_resource,
stream_datum. A resource or stream_resource naming a file outside the catalog's data roots is
refused here, saying why (catalog/roots.py), so nothing is stored that could not be read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bluebroker.catalog import roots
from bluebroker.catalog.handlers import files_named

from .batch import Batch, Rejected, same
from .errors import InvalidDocument, UidConflict, UnknownParent
from .segments import digest

if TYPE_CHECKING:
    from bluebroker.catalog import Catalog


class AssetWriting:
    """The CatalogWriter's handling of the documents that locate external data."""

    catalog: Catalog
    _resources: dict[str, int]
    _stream_resources: dict[str, tuple[int, str]]

    def _resource(self, batch: Batch, index: int, doc: dict) -> None:
        run = self._parent_run(batch, "resource", doc)
        d = digest(doc)
        if doc["uid"] in batch.resources or doc["uid"] in self._resources:
            row = batch.session.find_resource(doc["uid"])
            if row is not None:
                same(batch, "resource", doc, row.digest, d)
            else:  # inserted earlier in this same batch
                batch.result.duplicates += 1
            return
        row = batch.session.find_resource(doc["uid"])
        if row is not None:
            self._resources[doc["uid"]] = row.run_id
            same(batch, "resource", doc, row.digest, d)
            return
        self._check_files("resource", doc, self._resource_files(doc))
        batch.session.insert_resource(run.id, doc, d)
        batch.resources[doc["uid"]] = run.id
        batch.log_doc(run.id, "resource")

    def _resource_files(self, doc: dict) -> list[str]:
        path = roots.resource_file(doc, self.catalog.root_map)
        try:
            return files_named(doc["spec"], path, doc.get("resource_kwargs", {}))
        except (TypeError, ValueError) as err:
            raise InvalidDocument("resource", doc, f"names its files wrongly: {err}") from None

    def _check_files(self, name: str, doc: dict, paths: list[str]) -> None:
        """Refuse a document naming a file the catalog would never open (outside its data
        roots), with the reason: better now, at the sender, than at every later read."""
        for path in paths:
            try:
                roots.check(self.catalog.data_roots, path)
            except roots.OutsideDataRoots as err:
                raise InvalidDocument(name, doc, str(err)) from None

    def _resource_run(self, batch: Batch, name: str, doc: dict, uid: str) -> int:
        run_id = batch.resources.get(uid) or self._resources.get(uid)
        if run_id is None:
            row = batch.session.find_resource(uid)
            if row is None:
                raise UnknownParent(
                    name,
                    doc,
                    f"refers to resource {uid!r}, which was never "
                    "received; send the resource document first",
                )
            run_id = self._resources[uid] = row.run_id
        return run_id

    def _datum(self, batch: Batch, index: int, doc: dict) -> None:
        run_id = self._resource_run(batch, "datum", doc, doc["resource"])
        row = {
            "datum_id": doc["datum_id"],
            "resource": doc["resource"],
            "kwargs": doc["datum_kwargs"],
        }
        batch.datums.append((index, row, batch.log_doc(run_id, "datum")))

    def _datum_page(self, batch: Batch, index: int, doc: dict) -> None:
        run_id = self._resource_run(batch, "datum_page", doc, doc["resource"])
        ids = doc["datum_id"]
        kwargs = doc["datum_kwargs"]
        if len(set(ids)) != len(ids):
            raise InvalidDocument("datum_page", doc, "lists the same datum_id more than once")
        for key, values in kwargs.items():
            if len(values) != len(ids):
                raise InvalidDocument(
                    "datum_page",
                    doc,
                    f"datum_kwargs[{key!r}] has {len(values)} values for {len(ids)} datum ids",
                )
        entry = batch.log_doc(run_id, "datum_page")
        for i, datum_id in enumerate(ids):
            row = {
                "datum_id": datum_id,
                "resource": doc["resource"],
                "kwargs": {k: _plain(v[i]) for k, v in kwargs.items()},
            }
            batch.datums.append((index, row, entry))

    def _stream_resource(self, batch: Batch, index: int, doc: dict) -> None:
        run = self._parent_run(batch, "stream_resource", doc)
        d = digest(doc)
        row = batch.session.find_stream_resource(doc["uid"])
        if row is not None:
            same(batch, "stream_resource", doc, row.digest, d)
            return
        if doc["uid"] in batch.stream_resources:
            batch.result.duplicates += 1
            return
        self._check_files(
            "stream_resource", doc, [roots.stream_file(doc["uri"], self.catalog.root_map)]
        )
        batch.session.insert_stream_resource(run.id, doc, d)
        batch.stream_resources[doc["uid"]] = (run.id, doc["data_key"])
        batch.log_doc(run.id, "stream_resource")

    def _stream_datum(self, batch: Batch, index: int, doc: dict) -> None:
        sres = batch.stream_resources.get(doc["stream_resource"]) or self._stream_resources.get(
            doc["stream_resource"]
        )
        if sres is None:
            row = batch.session.find_stream_resource(doc["stream_resource"])
            if row is None:
                raise UnknownParent(
                    "stream_datum",
                    doc,
                    f"refers to stream_resource "
                    f"{doc['stream_resource']!r}, which was never received",
                )
            sres = self._stream_resources[doc["stream_resource"]] = (row.run_id, row.data_key)
        desc = self._descriptor(batch, "stream_datum", doc, doc["descriptor"])
        run_id, data_key = sres
        if data_key not in desc.data_keys:
            raise InvalidDocument(
                "stream_datum",
                doc,
                f"its stream_resource is for "
                f"{data_key!r}, which descriptor {doc['descriptor']!r} lacks",
            )
        d = digest(doc)
        existing = batch.session.find_stream_datum(doc["uid"])
        if existing is not None:
            same(batch, "stream_datum", doc, existing, d)
            return
        for key in ("seq_nums", "indices"):
            if doc[key]["stop"] < doc[key]["start"]:
                raise InvalidDocument("stream_datum", doc, f"{key} stop is before start")
        if any(s.desc.stream_id == desc.stream_id for s in batch.segments):
            self._flush(batch, batch.strict)  # earlier events first (see insert_stream_datum)
        batch.session.insert_stream_datum(desc.stream_id, data_key, doc, d)
        batch.log_doc(run_id, "stream_datum")

    def _flush_datums(self, batch: Batch, strict: bool) -> None:
        """Insert buffered datums; a datum or datum_page is new, a duplicate, or a conflict as
        a whole, like events and event pages."""
        pending, batch.datums = batch.datums, []
        if not pending:
            return
        stored = batch.session.datum_kwargs([row["datum_id"] for _, row, _ in pending])
        known = {k: (resource, digest(kwargs)) for k, (resource, kwargs) in stored.items()}
        groups: dict[int, tuple[int, dict, list[dict]]] = {}
        for index, row, entry in pending:
            groups.setdefault(id(entry), (index, entry, []))[2].append(row)
        new_rows: list[dict] = []
        for index, entry, rows in groups.values():
            keys = [(r["resource"], digest(r["kwargs"])) for r in rows]
            previous = [known.get(r["datum_id"]) for r in rows]
            if all(p is None for p in previous):
                new_rows.extend(rows)
                known.update((r["datum_id"], k) for r, k in zip(rows, keys, strict=True))
                continue
            entry["dropped"] = True
            if previous == keys:
                batch.result.duplicates += 1
                continue
            err = UidConflict(
                entry["name"],
                {"datum_id": rows[0]["datum_id"]},
                "a different datum already uses this datum_id"
                if all(p is not None for p in previous)
                else "some of these datums are already stored and some are not",
            )
            if strict:
                raise err
            batch.result.rejected.append(Rejected(index, entry["name"], err))
        batch.session.insert_datums(new_rows)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value

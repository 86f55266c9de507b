"""Nodes as JSON:API-style resources: ``{"id", "attributes", "links", "meta"}``."""

from __future__ import annotations

from typing import Any

import numpy as np

from bluebroker.catalog import ArrayNode, Catalog, Container, Node, Run, RunCatalog, TableNode
from bluebroker.catalog.external import ExternalArray
from bluebroker.catalog.run import Stream
from bluebroker.catalog.tables import EventTable
from bluebroker.catalog.tree import Namespace
from bluebroker.structures import ArrayStructure, ContainerStructure, TableStructure

from .tiled_frames import as_tiled_writes, framed_structure
from .tiled_shapes import arrow_schema, data_source, frame_schema

ATTRIBUTES = (
    "ancestors",
    "structure_family",
    "specs",
    "metadata",
    "structure",
    "sorting",
    "data_sources",
)


# Spec versions are strings, as Tiled sends them. bluesky-tiled-plugins picks its run and
# stream classes by them: "3.x" is TiledWriter's SQL layout; any other version selects the
# classes of Databroker 2's layout (data / timestamps / config), which is bluebroker's tree.
SPEC_VERSIONS = {"CatalogOfBlueskyRuns": "1", "BlueskyRun": "1", "BlueskyEventStream": "1"}


def _table(columns: list[str], rows: int, schema: str) -> dict[str, Any]:
    out = TableStructure(columns, rows).to_json()
    out["arrow_schema"] = schema  # Tiled's client builds its empty frames (meta) from it
    out["resizable"] = False
    return out


def structure(
    node: Node, base: str = "", rows: int | None = None, inline: bool = True, tiled: bool = False
) -> dict[str, Any]:
    """``inline=False`` leaves the contents of the containers above the runs out, as Tiled's
    client needs (it reads inlined children of a catalog of runs as a list of runs);
    ``tiled`` gives a stream's data and timestamps as xarray datasets (see ``_dataset``)."""
    if isinstance(node, Catalog | Namespace):
        if not inline:
            return ContainerStructure(len(list(node))).to_json()
        # The few containers above the catalogs of runs come with their contents, so a
        # client walks c['bmm']['raw'] without a request per step.
        children = {key: resource(node[key], base) for key in node}
        return {"count": len(children), "contents": children}
    if isinstance(node, Stream):  # data, timestamps and config come along (see below)
        rows = node.num_rows()
        contents = {key: resource(node[key], base, rows=rows, tiled=tiled) for key in node}
        return {"count": 3, "contents": contents}
    if isinstance(node, EventTable) and tiled:
        return _dataset(node, base, rows)
    if isinstance(node, EventTable) and node.kind == "timestamps" and rows is not None:
        # listed in a stream: kept short (timestamps are float64 seconds)
        f64 = np.dtype("float64")
        schema = arrow_schema("seq_num", {c: ((rows,), f64) for c in node.columns})
        return _table(node.columns, rows, schema)
    if isinstance(node, EventTable):  # and with a table, its columns' structures
        infos = node.column_infos(rows)
        rows = next(iter(infos.values()))[1][0][0] if infos else len(node)
        schema = arrow_schema("seq_num", {n: info[:2] for n, (_, info) in infos.items()})
        out = _table(node.columns, rows, schema)
        out["contents"] = {
            name: resource(child, base, info=info, embedded=True)
            for name, (child, info) in infos.items()
        }
        return out
    if isinstance(node, ArrayNode):
        return ArrayStructure.from_array_info(*node.info()).to_json()
    if isinstance(node, TableNode):  # configuration: one row per descriptor, read whole
        frame = node.read()
        return _table(node.columns, len(frame), frame_schema(frame))
    if isinstance(node, Run):  # stream names are in the summary: no query per run
        return ContainerStructure(len(node.summary.get("stream_names", []))).to_json()
    if isinstance(node, Container):
        return ContainerStructure(len(node)).to_json()
    return {}


def _dataset(node: EventTable, base: str, rows: int | None) -> dict[str, Any]:
    """A stream's data or timestamps as Tiled's client expects them from Databroker 2's
    layout: an ``xarray_dataset`` container whose arrays are its variables (``time`` the
    coordinate), so ``stream.read()`` gives an xarray.Dataset as it does there."""
    contents = {}
    for name, (child, info) in node.column_infos(rows).items():
        item = resource(child, base, info=info, embedded=True, tiled=True)
        attrs = item["attributes"]
        role = "xarray_coord" if name == "time" else "xarray_data_var"
        attrs["specs"] = [{"name": role, "version": None}]
        attrs["metadata"] = {**attrs["metadata"], "attrs": {}}
        contents[name] = item
    return {"count": len(contents), "contents": contents}


def data_sources(node: Node, tiled: bool = False) -> list[dict[str, Any]]:
    """Where external data lie, so users with direct access can open the files."""
    if not isinstance(node, ExternalArray):
        return []
    shown = as_tiled_writes(node) if tiled else node
    shaped = ArrayStructure.from_array_info(*shown.info()).to_json()
    return [data_source(asset, shaped) for asset in node.asset_locations()]


def links(node: Node, base: str) -> dict[str, str]:
    path = "/".join(node.path)
    sep = "/" if path else ""
    out = {"self": f"{base}/metadata{sep}{path}"}
    if node.structure_family == "container":
        out["search"] = f"{base}/search{sep}{path}"
        if node.specs and node.specs[0] in ("BlueskyEventStream", "BlueskyRun"):
            out["full"] = f"{base}/container/full{sep}{path}"
        if isinstance(node, Run):
            out["documents"] = f"{base}/documents{sep}{path}"
    elif node.structure_family == "array":
        out["full"] = f"{base}/array/full{sep}{path}"
        out["block"] = f"{base}/array/block{sep}{path}?block={{0}}"
    elif node.structure_family == "table":
        out["full"] = f"{base}/table/full{sep}{path}"
        out["partition"] = f"{base}/table/partition{sep}{path}?partition={{index}}"
    if getattr(node, "download_name", None) is not None and node.download_name():
        out["download"] = f"{base}/asset/bytes{sep}{path}"  # the whole file, as it lies
    return out


def resource(
    node: Node,
    base: str,
    fields: tuple[str, ...] | None = None,
    *,
    info: tuple | None = None,
    embedded: bool = False,
    rows: int | None = None,
    inline: bool = True,
    tiled: bool = False,
) -> dict[str, Any]:
    """The JSON for one node; ``fields`` limits the attributes (None: all of them).

    ``info`` is an array's (shape, dtype, dims) when already known; ``embedded`` leaves out
    what costs a query per node (data_sources), for nodes listed inside their parent;
    ``inline=False`` gives Tiled's client the containers above the runs without contents,
    and ``tiled`` the shapes it needs where ours differ (a stream's tables as datasets).
    """
    wanted = ATTRIBUTES if fields is None else fields
    dataset = tiled and isinstance(node, EventTable)
    attrs: dict[str, Any] = {}
    if "ancestors" in wanted:
        attrs["ancestors"] = list(node.path[:-1])
    if "structure_family" in wanted:
        attrs["structure_family"] = "container" if dataset else node.structure_family
    if "specs" in wanted:
        specs = ["xarray_dataset"] if dataset else node.specs
        attrs["specs"] = [{"name": s, "version": SPEC_VERSIONS.get(s)} for s in specs]
    if "metadata" in wanted:
        attrs["metadata"] = {**node.metadata, "attrs": {}} if dataset else node.metadata
    framed = framed_structure(node) if tiled and "structure" in wanted else None
    if framed is not None:  # TiledWriter's frame axis (tiled_frames.py)
        attrs["structure"] = framed
    elif "structure" in wanted:
        attrs["structure"] = (
            ArrayStructure.from_array_info(*info).to_json()
            if info
            else structure(node, base, rows, inline, tiled)
        )
    if "sorting" in wanted and isinstance(node, RunCatalog):
        attrs["sorting"] = [{"key": k, "direction": d} for k, d in node.sort_keys]
    if "sorting" in wanted and dataset:  # "_": as stored, which lets Tiled's client use
        attrs["sorting"] = [{"key": "_", "direction": 1}]  # the inlined variables
    if "data_sources" in wanted and isinstance(node, ArrayNode) and not embedded:
        attrs["data_sources"] = data_sources(node, tiled)
    out_links = links(node, base)
    if dataset:  # its variables' columns in one Arrow table (Tiled's wide-table read)
        path = "/".join(node.path)
        out_links = {
            "self": out_links["self"],
            "search": f"{base}/search/{path}",
            "full": f"{base}/container/full/{path}",
        }
    return {
        "id": node.path[-1] if node.path else "",
        "attributes": attrs,
        "links": out_links,
        "meta": None,
    }

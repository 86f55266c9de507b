"""Nodes as JSON:API-style resources: ``{"id", "attributes", "links", "meta"}``."""

from __future__ import annotations

from typing import Any

from bluebroker.catalog import ArrayNode, Catalog, Container, Node, Run, RunCatalog, TableNode
from bluebroker.catalog.external import ExternalArray
from bluebroker.catalog.run import Stream
from bluebroker.catalog.tables import EventTable
from bluebroker.catalog.tree import Namespace
from bluebroker.structures import ArrayStructure, ContainerStructure, TableStructure

ATTRIBUTES = (
    "ancestors",
    "structure_family",
    "specs",
    "metadata",
    "structure",
    "sorting",
    "data_sources",
)


def structure(node: Node, base: str = "", rows: int | None = None) -> dict[str, Any]:
    if isinstance(node, Catalog | Namespace):
        # The few containers above the catalogs of runs come with their contents, so a
        # client walks c['bmm']['raw'] without a request per step.
        children = {key: resource(node[key], base) for key in node}
        return {"count": len(children), "contents": children}
    if isinstance(node, Stream):  # data, timestamps and config come along (see below)
        rows = node.num_rows()
        return {"count": 3, "contents": {key: resource(node[key], base, rows=rows) for key in node}}
    if isinstance(node, EventTable) and node.kind == "timestamps" and rows is not None:
        return TableStructure(node.columns, rows).to_json()  # listed in a stream: kept short
    if isinstance(node, EventTable):  # and with a table, its columns' structures
        infos = node.column_infos(rows)
        rows = next(iter(infos.values()))[1][0][0] if infos else len(node)
        out = TableStructure(node.columns, rows).to_json()
        out["contents"] = {
            name: resource(child, base, info=info, embedded=True)
            for name, (child, info) in infos.items()
        }
        return out
    if isinstance(node, ArrayNode):
        return ArrayStructure.from_array_info(*node.info()).to_json()
    if isinstance(node, TableNode):
        return TableStructure(node.columns, len(node)).to_json()
    if isinstance(node, Run):  # stream names are in the summary: no query per run
        return ContainerStructure(len(node.summary.get("stream_names", []))).to_json()
    if isinstance(node, Container):
        return ContainerStructure(len(node)).to_json()
    return {}


def data_sources(node: Node) -> list[dict[str, Any]]:
    """Where external data lie, so users with direct access can open the files."""
    if not isinstance(node, ExternalArray):
        return []
    sources = []
    for asset in node.asset_locations():
        source = {
            "mimetype": asset.get("mimetype") or asset.get("spec"),
            "assets": [
                {
                    "data_uri": asset.get("uri") or f"file://localhost{asset['path']}",
                    "path": asset["path"],
                }
            ],
        }
        source["parameters"] = asset.get("parameters", asset.get("resource_kwargs", {}))
        sources.append(source)
    return sources


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
    return out


def resource(
    node: Node,
    base: str,
    fields: tuple[str, ...] | None = None,
    *,
    info: tuple | None = None,
    embedded: bool = False,
    rows: int | None = None,
) -> dict[str, Any]:
    """The JSON for one node; ``fields`` limits the attributes (None: all of them).

    ``info`` is an array's (shape, dtype, dims) when already known; ``embedded`` leaves out
    what costs a query per node (data_sources), for nodes listed inside their parent.
    """
    wanted = ATTRIBUTES if fields is None else fields
    attrs: dict[str, Any] = {}
    if "ancestors" in wanted:
        attrs["ancestors"] = list(node.path[:-1])
    if "structure_family" in wanted:
        attrs["structure_family"] = node.structure_family
    if "specs" in wanted:
        attrs["specs"] = [{"name": s, "version": None} for s in node.specs]
    if "metadata" in wanted:
        attrs["metadata"] = node.metadata
    if "structure" in wanted:
        attrs["structure"] = (
            ArrayStructure.from_array_info(*info).to_json() if info else structure(node, base, rows)
        )
    if "sorting" in wanted and isinstance(node, RunCatalog):
        attrs["sorting"] = [{"key": k, "direction": d} for k, d in node.sort_keys]
    if "data_sources" in wanted and isinstance(node, ArrayNode) and not embedded:
        attrs["data_sources"] = data_sources(node)
    return {
        "id": node.path[-1] if node.path else "",
        "attributes": attrs,
        "links": links(node, base),
        "meta": None,
    }

"""Bring stream_resource documents of event-model 1.19.8-1.20 into today's form.

Between event-model 1.19.8 and 1.20, a stream_resource named its files like a resource does
(``spec``, ``root``, ``resource_path``, ``resource_kwargs``); since 1.21 it has ``mimetype``,
``uri`` and ``parameters``. Beamlines still replay such runs, so the writer converts them and
keeps the original in the document log. The first 1.19 releases (``stream_names``,
``block_idx``) had no way to name a data key and are refused with an explanation.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from .errors import InvalidDocument

HDF5 = "application/x-hdf5"
HDF5_SPECS = {
    "HDF5",
    "AD_HDF5",
    "AD_HDF5_SINGLE",
    "AD_HDF5_SWMR",
    "AD_HDF5_SWMR_STREAM",
    "AD_HDF5_SWMR_SLICE",
    "AD_HDF5_GERM",
    "PIL100K_HDF5",
    "XSP",
    "XSP3",
    "XPS3",
    "XSP3_BULK",
    "XSP3_STEP",
    "PANDA",
    "ROI_HDF5_FLY",
    "ROI_HDF51_FLY",
    "SIS_HDF51_FLY_STREAM_V1",
    "MERLIN_FLY_STREAM_V2",
    "MERLIN_HDF5_BULK",
    "TPX_HDF5",
    "EIGER2_STREAM",
    "ZEBRA_HDF51_FLY_STREAM_V1",
}
OTHER_SPECS = {
    "AD_TIFF": "multipart/related;type=image/tiff",
    "NPY_SEQ": "multipart/related;type=application/x-npy",
}
# Where area detectors put their frames, when the old document did not say.
DEFAULT_DATASET = {
    "AD_HDF5": "/entry/data/data",
    "AD_HDF5_SINGLE": "/entry/data/data",
    "AD_HDF5_SWMR": "/entry/data/data",
    "AD_HDF5_SWMR_STREAM": "/entry/data/data",
    "HDF5": "/entry/data/data",
    "XSP": "/entry/instrument/detector/data",
    "XSP3": "/entry/instrument/detector/data",
    "TPX_HDF5": "/entry/instrument/detector/data",
}


def file_uri(root: str, resource_path: str) -> str:
    path = PurePosixPath("/", root.strip("/"), resource_path.strip("/"))
    return f"file://localhost{path}"


def modernize(name: str, doc: dict) -> dict:
    """Return ``doc`` in the current event-model form (a new dict if anything changed)."""
    if name == "stream_resource" and "mimetype" not in doc:
        if "stream_names" in doc or "data_key" not in doc:
            raise InvalidDocument(
                name,
                doc,
                "is in the event-model 1.19.0-1.19.7 form (stream_names, no "
                "data_key), which cannot say which field it holds; re-export it with "
                "event-model >= 1.19.8",
            )
        if "spec" in doc:
            return _from_spec(doc)
    if name == "stream_datum" and "block_idx" in doc:
        raise InvalidDocument(
            name,
            doc,
            "is in the event-model 1.19.0-1.19.7 form (block_idx, event_offset); "
            "re-export it with event-model >= 1.19.8 (indices and seq_nums)",
        )
    return doc


# The old form's fields: (the type each must have, whether it may be missing or null).
OLD_FIELDS = {
    "uid": (str, False),
    "data_key": (str, False),
    "spec": (str, False),
    "root": (str, True),
    "resource_path": (str, True),
    "resource_kwargs": (dict, True),
    "run_start": (str, True),
}


def _check_old_form(doc: dict) -> None:
    """The old form is converted before the schema check (the schema knows only the new
    one), so its own fields are checked here, to be refused in words, not a KeyError."""
    for key, (kind, optional) in OLD_FIELDS.items():
        value = doc.get(key)
        if value is None and optional:
            continue
        if not isinstance(value, kind):
            want = "a string" if kind is str else "a mapping"
            got = "missing" if key not in doc else f"got {type(value).__name__}"
            raise InvalidDocument(
                "stream_resource",
                doc,
                f"is in the event-model 1.19.8-1.20 form, whose {key!r} must be {want} ({got})",
            )


def _from_spec(doc: dict) -> dict:
    _check_old_form(doc)
    spec = doc["spec"].upper()
    mimetype = HDF5 if spec in HDF5_SPECS else OTHER_SPECS.get(spec, "application/octet-stream")
    parameters: dict[str, Any] = dict(doc.get("resource_kwargs") or {})
    if "frame_per_point" in parameters:
        parameters["multiplier"] = parameters.pop("frame_per_point")
    if mimetype == HDF5:
        if not isinstance(parameters.get("path", ""), str):
            raise InvalidDocument(
                "stream_resource",
                doc,
                "names its HDF5 dataset ('path') with something not a string",
            )
        if "path" in parameters:
            parameters["dataset"] = parameters.pop("path")
        parameters.setdefault("dataset", DEFAULT_DATASET.get(spec, "/entry/data/data"))
    out = {
        "uid": doc["uid"],
        "data_key": doc["data_key"],
        "mimetype": mimetype,
        "uri": file_uri(doc.get("root") or "", doc.get("resource_path") or ""),
        "parameters": parameters,
    }
    if doc.get("run_start"):
        out["run_start"] = doc["run_start"]
    return out

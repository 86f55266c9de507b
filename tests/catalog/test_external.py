"""External data: detector files referenced by documents, read lazily where they lie."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from bluesky import plans as bp
from event_model import pack_datum_page, pack_event_page
from ophyd.sim import det1, img

from bluebroker.catalog import ExternalDataMissing, UnknownHandler, open_catalog
from bluebroker.catalog import handlers as handlers_module
from bluebroker.ingest import CatalogWriter, InvalidDocument
from tests.compare import assert_run_matches, same
from tests.devices import HDF5Camera, StreamHDF5Camera, TiffCamera


def test_root_map_finds_moved_files(record, writer, tmp_path, catalog_uri):
    old = tmp_path / "old"
    old.mkdir()
    cam = HDF5Camera("cam", old)
    docs = record(bp.count([cam], num=3))
    writer.write_many(docs)
    new = tmp_path / "new"
    shutil.move(old, new)
    with pytest.raises(ExternalDataMissing, match="root_map"):
        writer.catalog["bmm/raw"][-1]["primary"]["data"]["cam"][0]
    moved = open_catalog(catalog_uri, root_map={str(old): str(new)}, data_roots=[tmp_path])
    node = moved["bmm/raw"][-1]["primary"]["data"]["cam"]
    np.testing.assert_array_equal(node[:], np.stack(cam.frames))
    assert node.asset_locations()[0]["path"] == str(new / cam.path.name)
    moved.close()


def test_pages_are_kept_as_pages(record, writer, tmp_path):
    """Documents packed into event_page / datum_page read back like singles, replay as pages."""
    cam = HDF5Camera("cam", tmp_path)
    docs = record(bp.count([cam, det1], num=4))
    events = [d for n, d in docs if n == "event"]
    datums = [d for n, d in docs if n == "datum"]
    paged = [(n, d) for n, d in docs if n not in ("event", "datum", "stop")]
    paged += [("datum_page", pack_datum_page(*datums)), ("event_page", pack_event_page(*events))]
    paged.append(next((n, d) for n, d in docs if n == "stop"))
    writer.write_many(paged)
    run = writer.catalog["bmm/raw"][-1]
    assert_run_matches(run, paged)
    np.testing.assert_array_equal(run["primary"]["data"]["cam"][1:3], np.stack(cam.frames[1:3]))
    assert [n for n, _ in run.documents()].count("event_page") == 1


def test_ophyd_sim_numpy_sequence(record, catalog_uri, tmp_path):
    """ophyd.sim's img writes into a folder of its own: a data root of its own too."""
    docs = record(bp.count([img], num=2))
    with open_catalog(catalog_uri, create=True, data_roots=[tmp_path, img.save_path]) as catalog:
        CatalogWriter(catalog, "bmm/raw").write_many(docs)
        node = catalog["bmm/raw"][-1]["primary"]["data"]["img"]
        assert node.shape == (2, 10, 10)
        np.testing.assert_array_equal(node[0], img.get())


def test_legacy_stream_resource_is_modernized(record, writer, tmp_path):
    cam = StreamHDF5Camera("scam", tmp_path)
    docs = record(bp.count([cam], num=3))
    legacy = []
    for name, doc in docs:
        if name == "stream_resource":  # as event-model 1.19.8-1.20 wrote it
            doc = {
                "uid": doc["uid"],
                "run_start": doc["run_start"],
                "data_key": doc["data_key"],
                "spec": "AD_HDF5_SWMR_STREAM",
                "root": str(tmp_path),
                "resource_path": cam.path.name,
                "resource_kwargs": {"path": "/entry/data/data"},
                "path_semantics": "posix",
            }
        legacy.append((name, doc))
    writer.write_many(legacy)
    run = writer.catalog["bmm/raw"][-1]
    np.testing.assert_array_equal(run["primary"]["data"]["scam"][:], np.stack(cam.frames))
    stored = dict((n, d) for n, d in run.documents() if n == "stream_resource")
    assert same(stored["stream_resource"], dict(legacy)["stream_resource"])  # kept as sent
    oldest = dict(dict(legacy)["stream_resource"], stream_names=["primary"])
    oldest.pop("data_key")
    with pytest.raises(InvalidDocument, match=r"1\.19\.0-1\.19\.7"):
        writer("stream_resource", dict(oldest, uid="other"))


def test_unknown_spec_says_what_to_install(record, writer, tmp_path):
    cam = HDF5Camera("cam", tmp_path)
    docs = [
        (n, dict(d, spec="VENDOR_XYZ") if n == "resource" else d)
        for n, d in record(bp.count([cam], num=1))
    ]
    writer.write_many(docs)
    with pytest.raises(UnknownHandler, match=r"VENDOR_XYZ.*databroker\.handlers"):
        writer.catalog["bmm/raw"][-1]["primary"]["data"]["cam"][0]


def test_handlers_from_entry_points(record, writer, tmp_path, monkeypatch):
    """A package that registers a handler under 'databroker.handlers' is used, as in
    Databroker."""
    site = tmp_path / "site"
    (site / "vendor_handlers-1.0.dist-info").mkdir(parents=True)
    (site / "vendor_handlers-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: vendor-handlers\nVersion: 1.0\n"
    )
    (site / "vendor_handlers-1.0.dist-info" / "entry_points.txt").write_text(
        "[databroker.handlers]\nVENDOR_XYZ = vendor_handlers:Doubled\n"
    )
    (site / "vendor_handlers.py").write_text(
        "import h5py\n"
        "class Doubled:\n"
        "    def __init__(self, filename, frame_per_point=1):\n"
        "        self.f = h5py.File(filename, 'r')\n"
        "    def __call__(self, point_number):\n"
        "        return 2 * self.f['/entry/data/data'][point_number]\n"
        "    def close(self):\n"
        "        self.f.close()\n"
    )
    monkeypatch.syspath_prepend(str(site))
    handlers_module.registry.cache_clear()
    cam = HDF5Camera("cam", tmp_path, dtype="int32")
    docs = [
        (n, dict(d, spec="VENDOR_XYZ") if n == "resource" else d)
        for n, d in record(bp.count([cam], num=2))
    ]
    writer.write_many(docs)
    node = writer.catalog["bmm/raw"][-1]["primary"]["data"]["cam"]
    np.testing.assert_array_equal(node[:], 2 * np.stack(cam.frames))
    handlers_module.registry.cache_clear()


def test_two_writers_share_one_catalog(record, catalog, tmp_path):
    """Two writers (two processes' worth of caches) on one database see each other's runs."""
    first, second = CatalogWriter(catalog, "bmm/raw"), CatalogWriter(catalog, "bmm/raw")
    docs = record(bp.count([det1], num=3))
    first.write_many(docs[:3])
    assert second.write_many(docs).duplicates == 3
    assert_run_matches(catalog["bmm/raw"][-1], docs)


def test_area_detector_tiff_files(record, writer, tmp_path):
    cam = TiffCamera("tcam", tmp_path, shape=(6, 4), dtype="uint16")
    writer.write_many(record(bp.count([cam], num=3)))
    node = writer.catalog["bmm/raw"][-1]["primary"]["data"]["tcam"]
    assert node.shape == (3, 6, 4)
    np.testing.assert_array_equal(node[:], np.stack(cam.frames))
    np.testing.assert_array_equal(node[2, 5], cam.frames[2][5])


def test_unusable_stream_files_are_external_data_errors(record, writer, tmp_path):
    """A file that is not HDF5, a folder, a shape that does not fit, a negative index: each is
    an ExternalDataError naming the field (a 502), never an internal error."""
    from bluebroker.catalog import ExternalDataError

    cam = StreamHDF5Camera("scam", tmp_path, shape=(3, 4))
    docs = record(bp.count([cam], num=2))
    (tmp_path / "text.h5").write_text("not HDF5")
    (tmp_path / "folder.h5").mkdir()
    variants = {
        "not hdf5": {"stream_resource": {"uri": f"file://localhost{tmp_path}/text.h5"}},
        "folder": {"stream_resource": {"uri": f"file://localhost{tmp_path}/folder.h5"}},
        "shape": {"descriptor": "shape"},
        "index": {"stream_datum": {"indices": {"start": -5, "stop": -4}}},
    }
    for i, change in enumerate(variants.values()):
        changed = []
        for name, doc in docs:
            doc = dict(doc)
            if name == "start":
                doc["uid"] = f"{doc['uid']}-{i}"
            elif "run_start" in doc:
                doc["run_start"] = f"{doc['run_start']}-{i}"
            for key in ("uid", "descriptor", "stream_resource"):
                if name != "start" and isinstance(doc.get(key), str):
                    doc[key] = f"{doc[key]}-{i}"
            if name == "descriptor" and change.get("descriptor"):
                keys = {k: dict(v, shape=[5, 5]) for k, v in doc["data_keys"].items()}
                doc["data_keys"] = keys
            elif isinstance(change.get(name), dict):
                doc.update(change[name])
            changed.append((name, doc))
        writer.write_many(changed)
        node = writer.catalog["bmm/raw"][changed[0][1]["uid"]]["primary"]["data"]["scam"]
        with pytest.raises(ExternalDataError, match="field 'scam'"):
            node[:]

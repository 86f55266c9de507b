"""Data roots: the catalog opens only files inside them, refuses documents that point
elsewhere when they arrive, and refuses reads outside in words that never tell whether the
file exists. Rows whose data were never announced read as fill values, not as memory."""

from __future__ import annotations

import os
import re

import h5py
import httpx
import numpy as np
import pytest
from bluesky import plans as bp
from ophyd.sim import det1

from bluebroker.catalog import OutsideDataRoots, open_catalog
from bluebroker.ingest import CatalogWriter, InvalidDocument
from tests.devices import HDF5Camera, StreamHDF5Camera, TiffCamera


@pytest.fixture
def outside(tmp_path_factory):
    """A folder outside the test's data root, holding a readable HDF5 file."""
    where = tmp_path_factory.mktemp("outside")
    with h5py.File(where / "secret.h5", "w") as f:
        f["/entry/data/data"] = np.full((4, 6, 5), 42, dtype="uint16")
    return where


def _with(docs, name, **changes):
    return [(n, dict(d, **changes) if n == name else d) for n, d in docs]


# -- which roots a catalog has ----------------------------------------------------------------


def test_default_roots(tmp_path, postgresql_uri):
    (tmp_path / "here").mkdir()
    with open_catalog(f"sqlite:///{tmp_path}/here/catalog.db") as cat:
        assert cat.data_roots == (os.path.realpath(tmp_path / "here"),)
    with open_catalog(postgresql_uri, create=True) as cat:
        assert cat.data_roots == ()
    with open_catalog(postgresql_uri, data_roots=[tmp_path, str(tmp_path)]) as cat:
        assert cat.data_roots == (os.path.realpath(tmp_path),)
    with pytest.raises(Exception, match="is not a folder"):
        open_catalog(postgresql_uri, data_roots=[tmp_path / "missing"])


def test_no_roots_refuses_external_documents_naming_the_option(record, postgresql_uri, tmp_path):
    docs = record(bp.count([HDF5Camera("cam", tmp_path), det1], num=2))
    with open_catalog(postgresql_uri, create=True) as cat:
        result = CatalogWriter(cat, "bmm/raw").write_many(docs, strict=False)
        refused = {r.name for r in result.rejected}
        assert refused == {"resource", "datum"}
        assert "--data-root" in str(result.rejected[0].error)
        run = cat["bmm/raw"][-1]  # everything else is kept
        assert run["primary"]["data"]["det1"].shape == (2,)


# -- refused at ingest ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"root": "/etc", "resource_path": "passwd"},
        {"resource_path": "../../../../../../etc/passwd"},
        {"root": "", "resource_path": "relative/file.h5"},
        {"resource_path": "cam.h5\x00"},
    ],
    ids=["absolute", "dotdot", "relative", "nul"],
)
def test_resources_outside_are_refused_at_ingest(record, writer, tmp_path, change):
    docs = record(bp.count([HDF5Camera("cam", tmp_path), det1], num=2))
    with pytest.raises(InvalidDocument, match="outside the data roots"):
        writer.write_many(_with(docs, "resource", **change))
    result = writer.write_many(_with(docs, "resource", **change), strict=False)
    assert [r.name for r in result.rejected] == ["resource", "datum", "datum"]
    assert len(writer.catalog["bmm/raw"]) == 1  # the run, its events and stop are kept


def test_a_symlink_out_of_the_root_is_refused(record, writer, tmp_path, outside):
    (tmp_path / "link").symlink_to(outside)
    docs = record(bp.count([HDF5Camera("cam", tmp_path)], num=1))
    bad = _with(docs, "resource", root=str(tmp_path / "link"), resource_path="secret.h5")
    with pytest.raises(InvalidDocument, match="outside the data roots"):
        writer.write_many(bad)


def test_stream_resources_outside_are_refused(record, writer, tmp_path, outside):
    docs = record(bp.count([StreamHDF5Camera("scam", tmp_path)], num=2))
    for uri in (
        f"file://localhost{outside}/secret.h5",
        f"file://localhost{tmp_path}/../{outside.name}/secret.h5",
        "https://example.com/secret.h5",
        "secret.h5",
    ):
        with pytest.raises(InvalidDocument, match="outside the data roots"):
            writer.write_many(_with(docs, "stream_resource", uri=uri))


def test_handler_templates_cannot_leave_the_root(record, writer, tmp_path):
    docs = record(bp.count([TiffCamera("tcam", tmp_path, shape=(3, 2))], num=1))
    resource = next(d for n, d in docs if n == "resource")
    kwargs = resource["resource_kwargs"]
    escape = dict(kwargs, template="%s../../../../../../etc/%s_%6.6d")
    with pytest.raises(InvalidDocument, match="outside the data roots"):
        writer.write_many(_with(docs, "resource", resource_kwargs=escape))
    huge = dict(kwargs, template="%999999999s%s%d")
    with pytest.raises(InvalidDocument, match="field widths"):
        writer.write_many(_with(docs, "resource", resource_kwargs=huge))


# -- refused at read time, the same words whether the file exists or not ----------------------


def test_reads_outside_say_the_same_whether_or_not_the_file_exists(record, catalog_uri, tmp_path):
    """Documents accepted under one configuration, read under a narrower one (a root that
    was removed): the refusal is a 403 that does not tell whether the file is there."""
    data = tmp_path / "data"
    data.mkdir()
    cam = HDF5Camera("cam", data)
    docs = record(bp.count([cam], num=2))
    with open_catalog(catalog_uri, create=True, data_roots=[data]) as wide:
        writer = CatalogWriter(wide, "bmm/raw")
        writer.write_many(docs)
    narrow_root = tmp_path / "elsewhere"
    narrow_root.mkdir()
    messages = []
    with open_catalog(catalog_uri, data_roots=[narrow_root]) as narrow:
        node = narrow["bmm/raw"][docs[0][1]["uid"]]["primary"]["data"]["cam"]
        with pytest.raises(OutsideDataRoots) as there:
            node[0]
        messages.append(str(there.value))
    os.remove(cam.path)
    with open_catalog(catalog_uri, data_roots=[narrow_root]) as narrow:
        node = narrow["bmm/raw"][docs[0][1]["uid"]]["primary"]["data"]["cam"]
        with pytest.raises(OutsideDataRoots) as missing:
            node[0]
        messages.append(str(missing.value))
    assert messages[0] == messages[1] and "not found" not in messages[0]
    # and over HTTP, from a server whose catalog has the narrow root
    from bluebroker.server.run import background_server

    with (
        open_catalog(catalog_uri, data_roots=[narrow_root]) as narrow,
        background_server(narrow) as url,
    ):
        path = f"bmm/raw/{docs[0][1]['uid']}/primary/data/cam"
        r = httpx.get(f"{url}/api/v1/array/full/{path}", params={"slice": "0"})
        assert r.status_code == 403 and "outside the data roots" in r.json()["detail"]


def test_a_file_swapped_for_a_symlink_after_ingest_is_not_read(record, writer, tmp_path, outside):
    cam = HDF5Camera("cam", tmp_path)
    writer.write_many(record(bp.count([cam], num=1)))
    node = writer.catalog["bmm/raw"][-1]["primary"]["data"]["cam"]
    assert node[0].shape == (4, 5)
    os.remove(cam.path)
    cam.path.symlink_to(outside / "secret.h5")
    with pytest.raises(OutsideDataRoots, match="outside the data roots"):
        node[0]


def test_hdf5_links_and_external_storage_cannot_leave_the_root(record, writer, tmp_path, outside):
    """An HDF5 file inside the root can name other files: an external link, raw external
    storage (any file's bytes), a virtual dataset. None of them is followed outside."""
    raw = outside / "raw.bin"
    raw.write_bytes(b"secret!!" * 20)
    cam = StreamHDF5Camera("scam", tmp_path, shape=(2, 2), dtype="uint16")
    docs = record(bp.count([cam], num=2))
    writer.write_many(docs)
    node = writer.catalog["bmm/raw"][-1]["primary"]["data"]["scam"]
    assert node[:].shape == (2, 2, 2)
    layout = h5py.VirtualLayout(shape=(2, 2, 2), dtype="uint16")
    layout[:] = h5py.VirtualSource(str(outside / "secret.h5"), "/entry/data/data", (4, 6, 5))[
        :2, :2, :2
    ]
    tricks = {
        "link": lambda f: f.__setitem__(
            "/entry/data/data", h5py.ExternalLink(str(outside / "secret.h5"), "/entry/data/data")
        ),
        "external": lambda f: f.create_dataset(
            "/entry/data/data", (2, 2, 2), "uint16", external=[(str(raw), 0, 16)]
        ),
        "virtual": lambda f: f.create_virtual_dataset("/entry/data/data", layout),
    }
    for _name, trick in tricks.items():
        os.remove(cam.path)
        with h5py.File(cam.path, "w", libver="latest") as f:
            f.create_group("/entry/data")
            trick(f)
        with pytest.raises(OutsideDataRoots, match="outside the data roots"):
            node[:]  # (the trick that got through is ``_name``)


def test_a_datum_index_cannot_name_another_file(record, tmp_path, catalog_uri):
    """Even through a third-party handler, which builds the file name itself."""
    from ophyd.sim import img

    docs = record(bp.count([img], num=1))
    docs = [
        (n, dict(d, datum_kwargs={"index": "0/../../../../etc/passwd"}) if n == "datum" else d)
        for n, d in docs
    ]
    with open_catalog(catalog_uri, create=True, data_roots=[img.save_path]) as cat:
        CatalogWriter(cat, "bmm/raw").write_many(docs)
        node = cat["bmm/raw"][-1]["primary"]["data"]["img"]
        with pytest.raises(OutsideDataRoots, match="outside the data roots"):
            node[0]  # ophyd's own NPY_SEQ handler (an entry point) opened it: the hook saw


# -- never memory that was not written --------------------------------------------------------


@pytest.mark.parametrize(("dtype", "fill"), [("float32", "NaN"), ("uint16", "0")])
def test_rows_without_stream_datum_read_as_fill_values(record, writer, tmp_path, dtype, fill):
    cam = StreamHDF5Camera("scam", tmp_path, shape=(64, 64), dtype=dtype)
    docs = record(bp.count([cam], num=3))
    first = next(d for n, d in docs if n == "stream_datum")
    writer.write_many([(n, d) for n, d in docs if n != "stream_datum" or d is first])
    node = writer.catalog["bmm/raw"][-1]["primary"]["data"]["scam"]
    values = node[:]
    assert values.dtype == np.dtype(dtype) and values.shape == (3, 64, 64)
    np.testing.assert_array_equal(values[0], cam.frames[0])
    expected = np.nan if fill == "NaN" else 0
    np.testing.assert_array_equal(values[1:], np.full((2, 64, 64), expected, dtype=dtype))
    assert node.metadata["rows_with_data"] == 1 and node.metadata["fill_value"] == fill


def test_no_stream_datum_at_all_reads_as_fill_values(record, writer, tmp_path):
    cam = StreamHDF5Camera("scam", tmp_path, shape=(128, 128), dtype="float64")
    docs = record(bp.count([cam], num=2))
    writer.write_many([(n, d) for n, d in docs if n != "stream_datum"])
    node = writer.catalog["bmm/raw"][-1]["primary"]["data"]["scam"]
    assert np.isnan(node[:]).all() and node.metadata["rows_with_data"] == 0


def test_refusal_messages_name_only_what_the_document_said(writer, tmp_path):
    """The message carries the path as the document wrote it: nothing the server found."""
    with pytest.raises(OutsideDataRoots) as err:
        from bluebroker.catalog.roots import check

        check(writer.catalog.data_roots, "/etc/../etc/shadow")
    assert re.fullmatch(
        r"file '/etc/\.\./etc/shadow' is outside the data roots; .*--data-root DIR.*",
        str(err.value),
    )


def test_events_without_a_datum_read_as_fill_values(record, writer, tmp_path):
    cam = HDF5Camera("cam", tmp_path, shape=(3, 2), dtype="int32")
    docs = record(bp.count([cam, det1], num=3))
    events = [d for n, d in docs if n == "event"]
    for key in ("data", "timestamps", "filled"):
        events[1][key].pop("cam", None)
    writer.write_many(docs)
    node = writer.catalog["bmm/raw"][-1]["primary"]["data"]["cam"]
    values = node[:]
    assert values.dtype == np.int32 and values.shape == (3, 3, 2)
    np.testing.assert_array_equal(values[[0, 2]], np.stack([cam.frames[0], cam.frames[2]]))
    np.testing.assert_array_equal(values[1], np.zeros((3, 2), dtype="int32"))
    assert node.metadata["fill_value"] == "0"

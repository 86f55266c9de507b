"""The same calls of Tiled's client against bluebroker and against a real Tiled server that
TiledWriter filled with the same RunEngine documents: values equal, types the same.

Runs in the peer environment (see test_databroker2.py: ``python benchmarks/peer_env.py``),
which holds Tiled's server; skipped with how to make it when it is absent. Both servers are
read through the same client there, bluebroker's runs as they are and Tiled's through the
plugin's ``.v2`` view (Databroker 2's layout, which is bluebroker's tree)."""

from __future__ import annotations

import json
import os
import subprocess

from bluebroker import packing

from .conftest import starts
from .test_databroker2 import ROOT, peer_python  # noqa: F401  (the fixture)

SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[4])
import msgpack, msgpack_numpy
from peer_tiled import TiledServer
from tiled.client import from_uri
from tiled.queries import Key, FullText, In
from tiled.structures.core import Spec
from bluesky_tiled_plugins import TiledWriter

def attempt(read):
    try:
        return read()
    except Exception as err:  # the other server may answer it: compare what each gives
        return f"{type(err).__name__}: {err}"[:300]

def observe(raw, uids, lazy_raw):
    out = {"len": len(raw)}
    scan = raw[uids[0]].v2
    data = scan["primary"]["data"]
    det1 = data["det1"][:5]
    out["det1"] = [type(det1).__name__, str(det1.dtype), det1.tolist()]
    ds = scan["primary"].read()
    out["read"] = [type(ds).__name__, sorted(ds.data_vars), list(ds.coords)]
    out["values"] = {k: ds[k].values.tolist() for k in sorted(ds.data_vars)}
    out["dtypes"] = {k: str(ds[k].dtype) for k in sorted(ds.data_vars)}
    out["time"] = ds["time"].values.tolist()
    out["baseline"] = sorted(scan["baseline"].read().data_vars)
    out["newest"] = raw[-1].metadata["start"]["uid"]
    out["by_scan_id"] = raw[2].metadata["start"]["uid"]
    out["by_partial"] = raw[uids[1][:8]].metadata["start"]["uid"]
    out["start"] = raw[uids[0]].metadata["start"]
    out["searches"] = [
        list(raw.search(q)) for q in
        (Key("sample") == "Cu", Key("scan_id") > 2, FullText("Fe"), In("sample", ["Cu", "Si"]))
    ]
    camera = raw[uids[1]].v2["primary"]
    cam = camera["data"]["cam"]
    frames = cam.read()
    out["cam"] = [type(frames).__name__, str(frames.dtype), list(frames.shape), frames.tolist()]
    out["cam_shape"] = [list(cam.shape), str(cam.dtype)]
    every = slice(None)
    out["cam_slices"] = [
        attempt(lambda: [list(cam[i].shape), cam[i].tolist()])
        for i in (0, slice(1, 3), (1, 0), (-1, 0, slice(2), slice(1, 4)), (..., 2),
                  (slice(None, None, 2), every, 3))
    ]
    out["cam_source"] = [s.structure["shape"] for s in cam.data_sources()]  # JSON there
    ds = camera.read()
    out["cam_in_read"] = [list(ds["cam"].shape), ds["cam"].values.tolist(), list(ds["cam"].dims)]
    for key, run in (("scam", uids[2]), ("wave", uids[3])):  # no frames per point named
        node = raw[run].v2["primary"]["data"][key]
        dims = list(raw[run].v2["primary"].read()[key].dims)  # axis names in the dataset
        out[key] = [list(node.shape), str(node.dtype), node.read().tolist(), dims]
    lazy = lazy_raw[uids[1]].v2["primary"]["data"]["cam"].read()  # dask, block by block
    part = attempt(lambda: lazy[:, :, 1:, ::2].compute().tolist())
    out["cam_dask"] = [type(lazy).__name__, list(lazy.shape), part]
    return out

docs = msgpack.unpackb(open(sys.argv[2], "rb").read(), object_hook=msgpack_numpy.decode,
                       strict_map_key=False)
uids = json.loads(sys.argv[3])
ours = [from_uri(sys.argv[1], *kind)["bmm"]["raw"] for kind in ((), ("dask",))]
result = {"bluebroker": observe(*ours[:1], uids, ours[1])}

class Server(TiledServer):
    def command(self):
        return super().command() + ["-r", sys.argv[5]]

with Server() as server:
    root = from_uri(server.url, api_key=server.api_key)
    raw = root.create_container("raw", specs=[Spec("CatalogOfBlueskyRuns", version="3.0")])
    writer = TiledWriter(raw)
    for name, doc in docs:
        writer(name, doc)
    theirs = [from_uri(server.url, *kind, api_key=server.api_key)["raw"]
              for kind in ((), ("dask",))]
    result["tiled"] = observe(theirs[0], uids, theirs[1])
print(json.dumps(result))
"""


def test_same_answers_as_tiled_with_tiledwriter(peer_python, tiled_url, beamline, tmp_path):  # noqa: F811
    runs = starts(beamline)
    uids = list(runs)
    docs = [pair for uid in uids for pair in beamline[uid]]
    path = tmp_path / "documents.msgpack"
    path.write_bytes(packing.packb(docs))
    done = subprocess.run(
        [
            str(peer_python),
            "-c",
            SCRIPT,
            tiled_url,
            str(path),
            json.dumps(uids),
            str(ROOT / "benchmarks"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if not k.startswith("TILED_")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    ours, theirs = got["bluebroker"], got["tiled"]
    assert ours["det1"] == theirs["det1"]  # ['ndarray', 'float64', [...]]
    assert ours["read"] == theirs["read"]  # ['Dataset', variables, ['time']]
    assert ours["values"] == theirs["values"] and ours["dtypes"] == theirs["dtypes"]
    assert ours["time"] == theirs["time"]
    assert ours["baseline"] == theirs["baseline"]
    for key in ("len", "newest", "by_scan_id", "by_partial", "start", "searches"):
        assert ours[key] == theirs[key], key
    # the images: TiledWriter gives each event's frames an axis of their own (frame_per_point
    # of the resource, here 1): the same shape, slices, blocks, values and dtype
    for key in ("cam", "cam_shape", "cam_slices", "cam_source", "cam_in_read", "cam_dask"):
        assert ours[key] == theirs[key], key
    for key in ("scam", "wave"):  # a stream_resource's camera, an inline waveform: as declared
        assert ours[key][:3] == theirs[key][:3], key
    # axis names in stream.read(): the external camera's as Tiled's client names them; the
    # inline waveform is 2-D here where Tiled's read() gives a 1-D column of lists
    assert ours["scam"][3] == theirs["scam"][3] == ["time", "scam_dim1", "scam_dim2"]
    assert ours["wave"][3] == ["time", "dim_1"] and theirs["wave"][3] == ["time"]

"""Tiled's official Python client (``tiled[client]`` 0.2.x, with bluesky-tiled-plugins 2.0.x
for the Bluesky node classes) driven against a live bluebroker serving RunEngine data."""

from __future__ import annotations

import pytest

tiled_client = pytest.importorskip("tiled.client")
pytest.importorskip("bluesky_tiled_plugins")


@pytest.fixture
def tiled_url(beamline, catalog):
    """A live server (real uvicorn, loopback) holding the beamline's four runs."""
    from bluebroker.server.run import background_server

    with background_server(catalog) as url:
        yield url


@pytest.fixture
def tiled(tiled_url):
    """The official client's root node."""
    return tiled_client.from_uri(tiled_url)


def plain(doc):
    """A document as it comes back over the wire (tuples as lists, numpy as numbers)."""
    import json

    import numpy as np

    return json.loads(
        json.dumps(
            doc, default=lambda o: o.tolist() if isinstance(o, np.ndarray | np.generic) else str(o)
        )
    )


def starts(beamline) -> dict[str, dict]:
    """Each run's start document, by uid, in acquisition order."""
    return {uid: docs[0][1] for uid, docs in beamline.items() if uid != "frames"}


def events(docs: list, stream: str = "primary") -> list[dict]:
    """The events of one stream of a run's recorded documents, in order."""
    descriptors = {d["uid"] for name, d in docs if name == "descriptor" and d.get("name") == stream}
    return [d for name, d in docs if name == "event" and d["descriptor"] in descriptors]

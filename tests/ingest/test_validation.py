"""The writer's validation agrees with event-model's own validator, fast paths included."""

from __future__ import annotations

import copy

import event_model
import numpy as np
import pytest

from bluebroker.ingest.errors import InvalidDocument
from bluebroker.ingest.validation import _plainly_valid_event, validate

EVENT = {
    "uid": "e1",
    "descriptor": "d1",
    "seq_num": 1,
    "time": 1.5,
    "data": {"x": 1.0, "img": "datum-1"},
    "timestamps": {"x": 1.0, "img": 1.0},
    "filled": {"img": False},
}


def _variant(**changes):
    doc = copy.deepcopy(EVENT)
    for key, value in changes.items():
        if value is KeyError:
            doc.pop(key)
        else:
            doc[key] = value
    return doc


VARIANTS = [
    _variant(),
    _variant(filled=KeyError),
    _variant(time=2),
    _variant(time=np.float64(2.0)),
    _variant(time="2.0"),
    _variant(time=True),
    _variant(seq_num=1.0),
    _variant(seq_num=True),
    _variant(seq_num=np.int64(3)),
    _variant(uid=KeyError),
    _variant(descriptor=7),
    _variant(data=[1]),
    _variant(timestamps=KeyError),
    _variant(filled={"img": "datum-1"}),
    _variant(filled={"img": 0}),
    _variant(filled=None),
    _variant(extra="not allowed"),
]


@pytest.mark.parametrize("doc", VARIANTS)
def test_event_validation_agrees_with_event_model(doc):
    try:
        event_model.schema_validators[event_model.DocumentNames.event].validate(doc)
        expected = True
    except Exception:
        expected = False
    if _plainly_valid_event(doc):
        assert expected, "the fast path accepted a document event-model refuses"
    if expected:
        assert validate("event", doc) is doc
    else:
        with pytest.raises(InvalidDocument):
            validate("event", doc)


def test_the_fast_path_takes_ordinary_events():
    assert _plainly_valid_event(EVENT)
    assert _plainly_valid_event(_variant(filled=KeyError))


@pytest.mark.parametrize("name", ["event_page", "resource"])
def test_closed_schemas_refuse_extra_keys(name):
    bundle = event_model.compose_run()
    if name == "resource":
        doc = bundle.compose_resource(
            spec="AD_HDF5", root="/", resource_path="a.h5", resource_kwargs={}
        ).resource_doc
    else:
        desc = bundle.compose_descriptor(
            name="primary", data_keys={"x": {"source": "s", "dtype": "number", "shape": []}}
        )
        doc = desc.compose_event_page(
            data={"x": [1.0]}, timestamps={"x": [1.0]}, seq_num=[1], time=[1.0], uid=["u"]
        )
    assert validate(name, dict(doc)) == doc
    with pytest.raises(InvalidDocument, match="schema"):
        validate(name, {**doc, "surprise": 1})

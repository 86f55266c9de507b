"""Fixtures the catalog tests share."""

from __future__ import annotations

import pytest


@pytest.fixture
def record(RE, recorder):
    """``record(plan)``: run a plan on the RunEngine and return the documents it emitted."""

    def run(plan):
        recorder.clear()
        token = RE.subscribe(recorder)
        RE(plan)
        RE.unsubscribe(token)
        return list(recorder)

    return run

"""schemathesis over the published OpenAPI schema, against a real server holding runs that a
real RunEngine wrote (an HDF5 area detector, a streaming detector, a waveform, baselines), on
both backends: no request it makes may get a 5xx, a status the schema does not list, or a body
or media type that the schema does not describe.

schemathesis runs as its command line does (examples, then the coverage phase's edge cases
and invalid values, then random fuzzing), bounded here so the suite stays fast;
``benchmarks/fuzz_api.py`` runs the same with many more examples.
"""

from __future__ import annotations

import httpx
import schemathesis
from schemathesis.engine import Status, events, from_schema

from bluebroker import formats, packing

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
]
PHASES = ["examples", "coverage", "fuzzing"]
# A Server-Sent Events stream stays open for as long as the client listens: a fuzzer would
# wait on each one until its timeout. tests/server/test_openapi.py checks that route.
SSE = "/api/v1/stream/single/{path}"


@schemathesis.serializer(formats.MSGPACK)
def _msgpack(ctx, value):
    """POST /documents takes msgpack too; schemathesis serializes only JSON of the two.
    msgpack has no integers beyond 64 bits: those go as text, as a client would have to."""
    return packing.packb(_within_64_bits(value))


def _within_64_bits(value):
    if isinstance(value, dict):
        return {k: _within_64_bits(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_within_64_bits(v) for v in value]
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return str(value)
    return value


def node_paths(base: str, limit: int = 200) -> list[str]:
    """Every node the server lists, walked over HTTP from the root (containers by search,
    tables by their columns), so the fuzzer reaches real runs, streams, tables and arrays."""
    found, todo = [], [""]
    with httpx.Client(base_url=base + "/api/v1", timeout=30) as client:
        while todo and len(found) < limit:
            path = todo.pop(0)
            found.append(path)
            node = client.get(f"/metadata/{path}").json()["data"]["attributes"]
            prefix = f"{path}/" if path else ""
            if node["structure_family"] == "container":
                page = client.get(f"/search/{path}", params={"page[limit]": 300}).json()
                todo += [prefix + child["id"] for child in page["data"]]
            elif node["structure_family"] == "table":
                todo += [prefix + column for column in node["structure"].get("columns", [])]
    return found


def with_real_paths(raw: dict, paths: list[str]) -> dict:
    """The schema as served, its ``{path}`` parameters told which nodes exist, so that the
    fuzzer spends its examples on real runs, streams, tables and arrays (the coverage phase
    still sends paths outside the list, and gets 404s)."""
    for operations in raw["paths"].values():
        for op in operations.values():
            for param in op.get("parameters", []):
                if param["in"] == "path" and param["name"] == "path":
                    param["schema"] = {"type": "string", "enum": paths}
    return raw


def fuzz(base: str, max_examples: int, seed: int | None = None) -> tuple[int, list[str]]:
    """Run schemathesis against the server at ``base``: (requests made, failures), each
    failure with the curl command that reproduces it."""
    raw = httpx.get(base + "/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(with_real_paths(raw, node_paths(base)))
    schema = schema.exclude(path=SSE)
    schema.config.update(base_url=base, request_timeout=60, workers=1)
    schema.config.generation.update(max_examples=max_examples)
    schema.config.phases.update(phases=PHASES)
    schema.config.checks.update(included_check_names=CHECKS)
    if seed is not None:
        schema.config.seed = seed
    requests, failures = 0, []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            requests += len(event.recorder.interactions)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        info = check.failure_info
                        failures.append(
                            f"{event.recorder.label}: {info.failure.title}: "
                            f"{info.failure.message}\n  {info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    return requests, sorted(set(failures))


def test_api_conforms_to_its_schema(beamline, served):
    requests, failures = fuzz(served, max_examples=20, seed=14)
    assert requests > 200  # it reached every route, not only the first
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)


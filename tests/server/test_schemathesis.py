"""schemathesis over the published OpenAPI schema, against a real server holding runs that a
real RunEngine wrote (an HDF5 area detector, a streaming detector, a waveform, baselines), on
both backends: no request it makes may get a 5xx, a status the schema does not list, or a body
or media type that the schema does not describe.

schemathesis runs as its command line does (examples, then the coverage phase's edge cases
and invalid values, then random fuzzing), bounded here so the suite stays fast;
``benchmarks/fuzz_api.py`` runs the same with many more examples.
"""

from __future__ import annotations

import collections
import dataclasses

import httpx
import schemathesis
from schemathesis.engine import Status, events, from_schema

from bluebroker import formats, packing

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]
PHASES = ["examples", "coverage", "fuzzing"]
# A Server-Sent Events stream stays open for as long as the client listens: a fuzzer would
# wait on each one until its timeout. tests/server/test_openapi.py checks that route.
SSE = "/api/v1/stream/single/{path}"
# OpenID Connect routes answer 200 only with a provider and a person signing in; they are
# driven end to end in tests/server/test_oidc.py (this server has no provider: 404s)
SIGN_IN = {
    f"/api/v1/auth/{p}"
    for p in ("login", "callback", "device", "device_code", "device_code/token", "sessions")
} | {"/api/v1/auth/session/refresh", "/api/v1/auth/logout"}


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


def node_paths(base: str, limit: int = 200, headers: dict | None = None) -> dict[str, str]:
    """Every node the server lists and its kind (container, table, array, or the spec of a
    run or stream), walked over HTTP from the root: containers by search, tables by their
    columns."""
    found: dict[str, str] = {}
    todo = [""]
    with httpx.Client(base_url=base + "/api/v1", timeout=30, headers=headers) as client:
        while todo and len(found) < limit:
            path = todo.pop(0)
            node = client.get(f"/metadata/{path}").json()["data"]["attributes"]
            specs = [s["name"] for s in node["specs"]]
            found[path] = specs[0] if specs else node["structure_family"]
            prefix = f"{path}/" if path else ""
            if node["structure_family"] == "container":
                page = client.get(f"/search/{path}", params={"page[limit]": 300}).json()
                todo += [prefix + child["id"] for child in page["data"]]
            elif node["structure_family"] == "table":
                todo += [prefix + column for column in node["structure"].get("columns", [])]
    return found


# The kind of node each route serves, for its example (the examples phase starts there).
EXAMPLE_KINDS = {
    "/api/v1/array/": "array",
    "/api/v1/table/": "table",
    "/api/v1/container/full/": "BlueskyEventStream",
    "/api/v1/documents/": "BlueskyRun",
    "/api/v1/asset/bytes/": "File",  # a served folder's file
    "/api/v1/": "CatalogOfBlueskyRuns",
}


def with_real_paths(raw: dict, nodes: dict[str, str]) -> dict:
    """The schema as served, its ``{path}`` parameters told which nodes exist, so that the
    fuzzer spends its examples on real runs, streams, tables and arrays (the coverage phase
    still sends paths outside the list, and gets 404s), each route's example a node of the
    kind it serves."""
    for template, operations in raw["paths"].items():
        kind = next((k for prefix, k in EXAMPLE_KINDS.items() if template.startswith(prefix)), "")
        example = next((path for path, k in nodes.items() if k == kind), "")
        for op in operations.values():
            for param in op.get("parameters", []):
                if param["in"] == "path" and param["name"] == "path":
                    param["schema"] = {"type": "string", "enum": list(nodes)}
                    param["example"] = example
    return raw


@dataclasses.dataclass
class Report:
    """What a run did: the statuses each operation got, and each failure with the curl
    command that reproduces it."""

    statuses: dict[str, collections.Counter] = dataclasses.field(default_factory=dict)
    failures: list[str] = dataclasses.field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(sum(c.values()) for c in self.statuses.values())


def fuzz(
    base: str, max_examples: int, seed: int | None = None, headers: dict | None = None
) -> Report:
    """Run schemathesis against the server at ``base`` (sending ``headers``, e.g. a key)."""
    raw = httpx.get(base + "/openapi.json", timeout=30).json()
    raw = with_real_paths(raw, node_paths(base, headers=headers))
    if headers:  # a key to revoke, so that DELETE /auth/apikey can succeed once
        made = httpx.post(f"{base}/api/v1/auth/apikey", json={}, headers=headers).json()
        for param in raw["paths"]["/api/v1/auth/apikey"]["delete"]["parameters"]:
            if param["name"] == "first_eight":
                param["example"] = made["first_eight"]
    schema = schemathesis.openapi.from_dict(raw)
    schema = schema.exclude(path=SSE)
    schema.config.update(base_url=base, request_timeout=60, workers=1, headers=headers)
    schema.config.generation.update(max_examples=max_examples)
    schema.config.phases.update(phases=PHASES)
    schema.config.checks.update(included_check_names=CHECKS)
    if seed is not None:
        schema.config.seed = seed
    report = Report()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            label = event.recorder.label
            seen = report.statuses.setdefault(label, collections.Counter())
            seen.update(
                i.response.status_code
                for i in event.recorder.interactions.values()
                if i.response is not None
            )
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        info = check.failure_info
                        report.failures.append(
                            f"{label}: {info.failure.title}: {info.failure.message}\n"
                            f"  {info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError):
            report.failures.append(f"{event.label}: {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    report.failures = sorted(set(report.failures))
    return report


def test_api_conforms_to_its_schema(beamline, catalog, tmp_path):
    from bluebroker.directory import DirectorySource
    from bluebroker.server.api_keys import ApiKeyStore
    from bluebroker.server.auth import AuthSettings
    from bluebroker.server.rate_limit import RateLimit
    from bluebroker.server.run import background_server

    # signed in, with API keys on, and no rate limit (tests/server/test_auth.py checks it)
    unlimited = {"failures": RateLimit(10**6), "auth_calls": RateLimit(10**6)}
    auth = AuthSettings(token="fuzz", keys=ApiKeyStore(catalog.engine), **unlimited)
    key = {"Authorization": "Bearer fuzz"}
    folder = tmp_path / "lake"  # a served folder beside the runs: its files download
    folder.mkdir()
    (folder / "notes.txt").write_bytes(b"beam time notes\n" * 100)
    lake = DirectorySource(catalog, folder, "files")
    lake.register()
    catalog.mount("files", lake)
    with background_server(catalog, auth=auth) as served:
        report = fuzz(served, max_examples=20, seed=14, headers=key)
        raw = httpx.get(served + "/openapi.json").json()
    assert not report.failures, f"{len(report.failures)} failures:\n" + "\n".join(report.failures)
    # It reached the whole API: every operation answered with data, and with errors (where
    # a request can be wrong at all: whoami takes nothing).
    operations = {
        f"{method.upper()} {path}": op
        for path, ops in raw["paths"].items()
        for method, op in ops.items()
    }
    operations.pop(f"GET {SSE}")
    assert set(report.statuses) == set(operations)
    for label, statuses in report.statuses.items():
        if label.split()[1] in SIGN_IN:  # no provider here: fuzzed for conformance alone
            continue
        assert statuses[200] > 0, (label, statuses)
        takes_input = operations[label].get("parameters") or operations[label].get("requestBody")
        if takes_input:
            assert any(400 <= s < 500 for s in statuses), (label, statuses)

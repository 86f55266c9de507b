"""The documentation runs as written: every Python block of README.md and docs/*.md, in
order, one namespace per file, against a live server holding the demo's data (the demo's own
plans: det1/det2, cam 5x64x64 images, its samples), from a folder laid out as the demo's
(``./bluebroker-data``), with the databroker configuration files the docs show.

A block that cannot run here (it needs Kafka, PostgreSQL or a sign-in service) is fenced
```` ```python no-run ```` and says why in its first line, a comment.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import pytest

from tests.demo_data import acquire_demo

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\S*)[ \t]*(.*)$")
DEMO_URLS = ("http://localhost:8000", "http://127.0.0.1:8000")
CONFIG = re.compile(r"^# ~/\.config/databroker/(\w+)\.yml$")


def blocks(path: Path) -> list[tuple[int, str, str, str]]:
    """``(line, language, rest of the info string, code)`` for each fenced block."""
    out, current = [], None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = FENCE.match(line)
        if current is None and match:
            current = (number + 1, match.group(1), match.group(2), [])
        elif current is not None and line.startswith("```"):
            out.append((*current[:3], "\n".join(current[3])))
            current = None
        elif current is not None:
            current[3].append(line)
    assert current is None, f"{path.name}: the block from line {current[0]} is never closed"
    return out


def python_blocks(path: Path) -> list[tuple[int, str]]:
    runnable = []
    for line, language, info, code in blocks(path):
        if language != "python":
            continue
        if "no-run" in info:
            first = code.lstrip().splitlines()[0] if code.strip() else ""
            assert first.startswith("#") and len(first) > 10, (
                f"{path.name}:{line}: a no-run block says why in its first line (a comment)"
            )
            continue
        runnable.append((line, code))
    return runnable


@pytest.fixture
def demo_folder(tmp_path, monkeypatch):
    """A folder as `./scripts/demo` leaves it after one round of its plans, served (each file
    gets its own: snippets write to it): yields the server's URL."""
    from bluebroker.catalog import open_catalog
    from bluebroker.server.run import background_server

    data = tmp_path / "bluebroker-data"
    data.mkdir()
    catalog = open_catalog(f"sqlite:///{data}/catalog.db", create=True, data_roots=[data])
    acquire_demo(catalog, data / "files")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("BLUEBROKER_API_KEY", raising=False)
    with background_server(catalog) as url:
        for path in DOCS:  # the databroker configurations the docs show
            for _, language, _, code in blocks(path):
                name = CONFIG.match(code.splitlines()[0]) if language == "yaml" and code else None
                if name:
                    folder = tmp_path / ".config" / "databroker"
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / f"{name.group(1)}.yml").write_text(_live(code, url))
        yield url
    catalog.close()


def _live(code: str, url: str) -> str:
    for demo in DEMO_URLS:
        code = code.replace(demo, url)
    return code


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_every_python_block_runs(path, request):
    runnable = python_blocks(path)
    if not runnable:
        return  # nothing to run: no demo needed
    demo_folder = request.getfixturevalue("demo_folder")
    namespace: dict = {"__name__": f"docs:{path.name}"}
    for line, code in runnable:
        where = f"{path.relative_to(ROOT)}:{line}"
        try:
            exec(compile(_live(code, demo_folder), where, "exec"), namespace)
        except Exception:
            pytest.fail(f"the block at {where} fails:\n{traceback.format_exc(limit=-3)}")


def test_blocks_are_found_and_fences_close():
    found = {p.name: len(python_blocks(p)) for p in DOCS}
    assert found["README.md"] >= 2 and found["user-guide.md"] >= 5, found


def test_routes_table_matches_the_server(catalog):
    """Every route the HTTP guide's table lists is one the server has, at that path (the
    health check outside /api/v1, the rest under it)."""
    from bluebroker.server.app import create_app

    served = {
        (method.upper(), re.sub(r"\{[^}]*\}", "{}", path))
        for path, methods in create_app(catalog).openapi()["paths"].items()
        for method in methods
    }
    text = (ROOT / "docs" / "http-api.md").read_text()
    section = text.split("## Routes", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE) ([^`?]+)", section, re.M)
    assert len(listed) >= 8
    missing = [
        f"{method} {path}"
        for method, path in listed
        if (method, re.sub(r"\{[^}]*\}", "{}", path.strip())) not in served
    ]
    assert not missing, f"docs/http-api.md lists routes the server does not have: {missing}"

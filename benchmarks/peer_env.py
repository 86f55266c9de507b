"""Create the virtualenv holding the *peer* stack (Tiled + bluesky-tiled-plugins).

The peer is measured in its own venv so that its dependency pins never
touch bluebroker's environment.  Usage::

    python benchmarks/peer_env.py            # creates <repo>/.bench/peer-venv
    python benchmarks/peer_env.py --force    # reinstall

or from Python::

    from benchmarks.peer_env import ensure_peer_venv
    py = ensure_peer_venv(Path("/work/main"))
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
import venv
from pathlib import Path

# Pinned peer stack.  tiled 0.2.x is the newest line at the time of writing;
# bluesky-tiled-plugins 2.x is the line whose TiledWriter targets tiled 0.2.
PEER_REQUIREMENTS = [
    "tiled[all]==0.2.20",
    "bluesky-tiled-plugins==2.0.12",
    # Databroker 2.0.2's v1 facade over Tiled: the peer of bluebroker's `databroker` package.
    "databroker[client,back-compat]==2.0.2",
    "pims",
    "tzlocal",
    "event-model",
    "numpy",
    "pandas",
    "httpx",
    # The live benchmark feeds TiledWriter from Kafka with the same consumer as ours, the
    # documents published as bluesky-kafka's Publisher does (confluent-kafka).
    "kafka-python",
    "confluent-kafka",
    "crc32c",
    "msgpack-numpy",
]

STAMP_NAME = ".peer-stack.json"


def _log(msg: str) -> None:
    print(f"[peer-env] {msg}", file=sys.stderr, flush=True)


def _venv_python(venv_dir: Path) -> Path:
    if sys.platform == "win32":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def _requirements_key(requirements: list[str]) -> str:
    return hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:16]


def _run(cmd: list[str]) -> None:
    _log("$ " + " ".join(cmd))
    # Stream pip's own output (to our stderr) so progress is visible.
    proc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}")


def ensure_peer_venv(
    root: Path,
    requirements: list[str] | None = None,
    force: bool = False,
) -> Path:
    """Make sure ``<root>/.bench/peer-venv`` exists with the peer stack.

    Returns the path of the venv's python.  A stamp file records the
    requirement list that was installed; a matching stamp skips the install.
    """
    requirements = list(requirements or PEER_REQUIREMENTS)
    venv_dir = Path(root).resolve() / ".bench" / "peer-venv"
    py = _venv_python(venv_dir)
    stamp = venv_dir / STAMP_NAME
    key = _requirements_key(requirements)

    if not force and py.exists() and stamp.exists():
        try:
            if json.loads(stamp.read_text()).get("key") == key:
                _log(f"peer venv up to date: {venv_dir}")
                return py
        except (OSError, ValueError):
            pass

    t0 = time.monotonic()
    if not py.exists():
        _log(f"creating virtualenv at {venv_dir}")
        venv_dir.parent.mkdir(parents=True, exist_ok=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(venv_dir)
    _log("upgrading pip (quietly)")
    _run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    _log("installing peer stack (this takes a few minutes): " + ", ".join(requirements))
    _run([str(py), "-m", "pip", "install", "--progress-bar", "off", *requirements])

    versions = subprocess.run(
        [
            str(py),
            "-c",
            "import importlib.metadata as m, json;"
            "print(json.dumps({p: m.version(p) for p in "
            "['tiled', 'bluesky-tiled-plugins', 'event-model', 'numpy', 'pandas', 'httpx']}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stamp.write_text(
        json.dumps(
            {"key": key, "requirements": requirements, "versions": json.loads(versions)},
            indent=2,
        )
    )
    _log(f"peer venv ready in {time.monotonic() - t0:.0f}s: {versions}")
    return py


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="project root; the venv goes to <root>/.bench/peer-venv",
    )
    ap.add_argument("--force", action="store_true", help="reinstall even if stamped")
    args = ap.parse_args(argv)
    print(ensure_peer_venv(args.root, force=args.force))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

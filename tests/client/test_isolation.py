"""The client stands alone: importing it pulls in no server, catalog or ingest code."""

from __future__ import annotations

import subprocess
import sys


def test_client_imports_nothing_from_the_server_side():
    code = (
        "import sys, bluebroker.client, bluebroker.queries\n"
        "bad = [m for m in sys.modules if m.startswith(('bluebroker.server', "
        "'bluebroker.catalog', 'bluebroker.ingest', 'sqlalchemy', 'fastapi', 'uvicorn'))]\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""

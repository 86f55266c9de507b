"""Running the app with uvicorn: in the foreground (``bluebroker serve``) or in a background
thread (``bluebroker demo``, tests, the ``databroker`` facade's ``temp()``)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn

from bluebroker.catalog import Catalog, CatalogError

from .app import create_app
from .auth import AuthSettings
from .observability import json_logs


def _check_port(host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise CatalogError(
                f"port {port} on {host} is in use; pass --port with a free one"
            ) from None


def serve(
    catalog: Catalog,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    kafka: dict | None = None,
    live_queue_limit: int = 1000,
    auth: AuthSettings | None = None,
    printed_url: Callable[[str], str] | None = None,
    metrics_public: bool = False,
    **limits: int | float,
) -> None:
    """Serve until interrupted; with ``kafka`` (KafkaIngestWorker keyword arguments), ingest
    from Kafka in the same process (a one-process deployment). ``limits`` are
    :class:`~bluebroker.server.limits.Limits` fields, as for ``create_app``; ``auth`` and
    ``api_key`` as there. ``printed_url`` turns the base URL into the one to print (with the
    single-user token). ``metrics_public`` lets anyone read ``/metrics``."""
    _check_port(host, port)
    app = create_app(
        catalog, api_key=api_key, auth=auth, live_queue_limit=live_queue_limit, **limits
    )
    app.state.metrics_public = metrics_public
    supervisor = None
    if kafka:
        from bluebroker.ingest.consumer import tune_gc_for_ingest
        from bluebroker.ingest.supervisor import IngestSupervisor

        tune_gc_for_ingest()
        supervisor = IngestSupervisor(catalog, kafka)
        app.state.ingest = supervisor  # /healthz says when ingest is down
        supervisor.start()
        print(f"ingesting {kafka['topic']} from {kafka['bootstrap_servers']}", flush=True)
    shown = catalog.engine.url.render_as_string(hide_password=True)  # logs keep no password
    url = f"http://{host}:{port}"
    app.state.auth.login_url = url
    shown_url = printed_url(url) if printed_url else url
    print(f"serving {shown} at {shown_url} (API docs at {url}/docs)", flush=True)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal to the
    # handler that was there before; this one lets the worker drain and the process exit 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: supervisor.stop(0) if supervisor is not None else None)
    try:
        # with JSON logs, uvicorn's own lines reach the root logger's JSON handler too
        plain = {} if not json_logs() else {"log_config": None}
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, **plain)
    finally:
        if supervisor is not None:
            supervisor.stop()  # the batch in hand is written and committed first


@contextmanager
def background_server(
    catalog: Catalog,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    live_queue_limit: int = 1000,
    auth: AuthSettings | None = None,
    **limits: int | float,
) -> Iterator[str]:
    """Serve in a thread; yields the base URL (port 0 picks a free port). ``limits`` as for
    ``create_app``."""
    _check_port(host, port)
    app = create_app(
        catalog, api_key=api_key, auth=auth, live_queue_limit=live_queue_limit, **limits
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="bluebroker-server")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise CatalogError(f"the server did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    app.state.auth.login_url = f"http://{host}:{bound}"
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)

"""What an operator watches (issue 20): ``/metrics`` in Prometheus's format with bounded labels,
``/readyz`` distinct from ``/healthz``, an ingest worker's own metrics, and JSON access logs
that never hold a token. Real servers, a real broker, real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from bluebroker.server.run import background_server
from tests.conftest import FAST_CONSUMER, TEST_KEY
from tests.processes import Running, free_port, wait_until_answering

KEY = {"Authorization": f"Bearer {TEST_KEY}"}


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample as (name, sorted labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found[name, tuple(sorted(labels.items()))]


def wait_for(predicate, timeout: float = 60, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_metrics_count_requests_by_route_template(catalog, writer):
    from tests.ingest.kafka_workers import compose

    docs = compose(3)
    writer.write_many(docs)
    uid = docs[0][1]["uid"]
    with background_server(catalog, api_key=TEST_KEY) as url:
        assert httpx.get(f"{url}/metrics").status_code == 401  # as the rest of the API
        for _ in range(3):
            got = httpx.get(f"{url}/api/v1/metadata/bmm/raw/{uid}", headers=KEY)
            assert got.status_code == 200
        assert httpx.get(f"{url}/api/v1/metadata/bmm/raw/nope", headers=KEY).status_code == 404
        assert httpx.get(f"{url}/no/such/route/{uid}", headers=KEY).status_code == 404
        with httpx.stream("GET", f"{url}/api/v1/stream/single/bmm/raw", headers=KEY) as live:
            assert live.status_code == 200
            lines = live.iter_lines()  # kept: a dropped iterator closes the stream
            assert next(lines) == "event: schema"  # subscribed
            text = httpx.get(f"{url}/metrics", headers=KEY).text
        found = samples(text)
    metadata = "/api/v1/metadata/{path:path}"
    count = "bluebroker_http_requests_total"
    assert value(found, count, method="GET", route=metadata, status="200") == 3
    assert value(found, count, method="GET", route=metadata, status="404") == 1
    assert value(found, count, method="GET", route="unmatched", status="404") == 1
    assert value(found, count, method="GET", route="/metrics", status="401") == 1
    assert uid not in text  # no raw paths: the number of series stays bounded
    histogram = "bluebroker_http_request_duration_seconds_count"
    assert value(found, histogram, method="GET", route=metadata) == 4
    assert value(found, "bluebroker_live_subscribers") == 1
    assert value(found, "bluebroker_live_queue_messages") >= 0
    assert value(found, "bluebroker_db_pool_size") >= 1
    assert value(found, "bluebroker_db_pool_checked_out") >= 0


def test_metrics_can_be_public_on_purpose(tmp_path):
    uri = f"sqlite:///{tmp_path}/c.db"
    server = Running("serve", "--catalog", uri, "--port", str(free_port()), "--metrics-public")
    try:
        url = server.wait_for("serving ").split(" at ")[1].split()[0]
        wait_until_answering(url)
        got = httpx.get(f"{url}/metrics")
        assert got.status_code == 200 and "bluebroker_http_requests_total" in got.text
        assert got.headers["content-type"].startswith("text/plain")
        assert httpx.get(f"{url}/api/v1/search/").status_code == 401  # the API stays closed
    finally:
        server.interrupt()
        assert server.finish()[0] == 0
        server.close()


def test_readiness_is_not_liveness(catalog):
    """A catalog whose schema is not this server's (a newer one, mid rolling upgrade): alive,
    not ready, saying what to do."""
    with background_server(catalog, api_key=TEST_KEY) as url:
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        with catalog.engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE bluebroker_meta SET value = '99' WHERE key = 'schema_version'"
            ))
        try:
            ready = httpx.get(f"{url}/readyz")
            assert ready.status_code == 503, ready.text
            assert ready.json()["status"] == "not ready"
            assert "version 99" in ready.json()["reasons"][0]
            assert "bluebroker catalog upgrade" in ready.json()["reasons"][0]
            assert httpx.get(f"{url}/healthz").status_code == 200
        finally:
            with catalog.engine.begin() as conn:
                conn.execute(sa.text(
                    "UPDATE bluebroker_meta SET value = '2' WHERE key = 'schema_version'"
                ))


def test_json_access_log_without_tokens(tmp_path):
    uri = f"sqlite:///{tmp_path}/c.db"
    server = Running(
        "serve", "--catalog", uri, "--port", str(free_port()), "--log-format", "json"
    )
    try:
        url = server.wait_for("serving ").split(" at ")[1].split()[0]
        wait_until_answering(url)
        got = httpx.get(
            f"{url}/api/v1/search/?api_key={TEST_KEY}&token={TEST_KEY}",
            headers={"X-Request-ID": "req-42"},
        )
        assert got.status_code == 200 and got.headers["x-request-id"] == "req-42"
        made = httpx.get(f"{url}/api/v1/search/", headers={"X-Request-ID": "bad id!"})
        assert made.status_code == 401 and len(made.headers["x-request-id"]) == 32
        server.wait_for('"request_id": "req-42"')
        server.wait_for(made.headers["x-request-id"])
    finally:
        server.interrupt()
        server.finish()
        server.close()
    lines = [json.loads(line) for line in server.lines if line.startswith("{")]
    ours = [line for line in lines if line.get("request_id") == "req-42"]
    assert len(ours) == 1, lines
    line = ours[0]
    assert line["route"] == "/api/v1/search/{path:path}" and line["status"] == 200
    assert line["method"] == "GET" and line["principal"] == "owner" and line["bytes"] > 0
    assert line["duration_ms"] >= 0 and line["path"] == "/api/v1/search/"
    assert TEST_KEY not in server.output and "token=" not in server.output


def test_an_ingest_workers_metrics(tmp_path, kafka_broker, new_topic):
    from tests.ingest.kafka_workers import compose, produce

    topic = new_topic(partitions=2)
    port = free_port()
    args = [
        str(Path(sys.executable).with_name("bluebroker")), "ingest", "kafka",
        "--bootstrap-servers", kafka_broker, "--topic", topic,
        "--catalog", f"sqlite:///{tmp_path}/c.db", "--group-id", f"g-{topic}",
        "--metrics-port", str(port),
    ]
    for key, val in FAST_CONSUMER.items():
        args += ["--consumer-config", f"{key}={val}"]
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        produce(kafka_broker, topic, compose(20))

        def scraped() -> dict:
            assert worker.poll() is None, log.read_text()[-3000:]
            try:
                return samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
            except httpx.TransportError:
                return {}

        def written() -> bool:  # lag is measured every 10 s, counters at once
            found = scraped()
            lags = [k for k in found if k[0] == "bluebroker_ingest_lag"]
            return found.get(("bluebroker_ingest_documents_written_total", ())) == 23 and lags

        wait_for(written, 120, "23 documents written and the lag, by the worker's metrics")
        found = scraped()
        assert value(found, "bluebroker_ingest_up") == 1
        assert value(found, "bluebroker_ingest_dead_letters_total") == 0
        # messages read again (a rebalance, a restarted fetch) are duplicates, never lost
        consumed = value(found, "bluebroker_ingest_messages_consumed_total")
        assert consumed == 23 + value(found, "bluebroker_ingest_documents_duplicate_total")
        lags = {k: v for k, v in found.items() if k[0] == "bluebroker_ingest_lag"}
        assert {dict(k[1])["partition"] for k in lags} <= {"0", "1"} and lags
        assert all(dict(k[1])["topic"] == topic for k in lags)
    finally:
        worker.send_signal(signal.SIGINT)
        assert worker.wait(60) == 0, log.read_text()[-3000:]



def test_serve_kafka_adds_the_ingest_metrics_and_readiness(tmp_path, kafka_broker, new_topic):
    from tests.ingest.kafka_workers import compose, produce, serve_kafka_args

    topic = new_topic()
    port = free_port()
    args = serve_kafka_args(f"sqlite:///{tmp_path}/c.db", port, kafka_broker, topic)
    server = Running(*args[1:], "--group-id", f"g-{topic}", "--metrics-public")
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_for("serving ")
        wait_until_answering(url)
        produce(kafka_broker, topic, compose(10))

        def written() -> bool:
            assert server.proc.poll() is None, server.output[-3000:]
            found = samples(httpx.get(f"{url}/metrics").text)
            return found.get(("bluebroker_ingest_documents_written_total", ())) == 13

        wait_for(written, 120, "13 documents written, by the server's metrics")
        found = samples(httpx.get(f"{url}/metrics").text)
        assert value(found, "bluebroker_ingest_up") == 1
        assert value(found, "bluebroker_ingest_restarts_total") == 0
        wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, 60, "ready")
    finally:
        server.interrupt()
        assert server.finish()[0] == 0
        server.close()

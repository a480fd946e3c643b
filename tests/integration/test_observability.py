"""History, the metrics API and Prometheus against a real sandbox cluster: the tick records per-server
history, a replica whose SQL thread is stopped under writes shows its lag rising, and a real Prometheus
scraping the ASGI app's /metrics with the bearer token answers a PromQL query with a replica's lag."""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from clusters.domain.history import SERIES
from clusters.services import history
from clusters.services.monitoring import monitor_shard
from tests.integration.monitoring_helpers import register, tenant_client
from tests.integration.routing_helpers import free_port, wait_until
from tests.integration.switchover_helpers import address
from tests.services_plugin import ManagedProcess, worker_environment

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "metrics-token-for-the-test-123"


def tick(cluster_id: int, rounds: int, pause: float = 0.25) -> None:
    for _ in range(rounds):
        monitor_shard([cluster_id])
        time.sleep(pause)


def lag_of(client, cluster_id: int, server_id: int) -> list[float | None]:
    response = client.get(f"/api/v1/clusters/{cluster_id}/metrics/?range=1h&series=lag,sql_running")
    assert response.status_code == 200, response.content
    (row,) = [s for s in response.json()["servers"] if s["id"] == server_id]
    return row["lag"]


def test_history_records_each_tick_and_a_stopped_sql_thread_shows_rising_lag(sandbox_cluster, clean_redis):
    client, created = tenant_client("histco")
    cluster = register(created.team, sandbox_cluster)
    tick(cluster.id, 3)
    body = client.get(f"/api/v1/clusters/{cluster.id}/metrics/?range=1h").json()
    assert body["series"] == list(SERIES) and len(body["servers"]) == 3
    assert all(len(s["t"]) == 3 for s in body["servers"])
    replica = next(s for s in cluster.servers.all() if s.port == sandbox_cluster.port(2))
    assert lag_of(client, cluster.id, replica.id)[-1] == 0.0
    last = body["servers"][0]["t"][-1]
    tick(cluster.id, 1)
    newer = client.get(f"/api/v1/clusters/{cluster.id}/metrics/?series=lag&since={last}").json()
    assert [len(s["t"]) for s in newer["servers"]] == [1, 1, 1] and newer["servers"][0]["t"][0] > last
    day = client.get(f"/api/v1/clusters/{cluster.id}/metrics/?range=24h&series=lag").json()
    assert day["resolution_seconds"] == 60 and all(len(s["t"]) >= 1 for s in day["servers"])
    assert client.get(f"/api/v1/clusters/{cluster.id}/metrics/?range=2h").status_code == 400
    bad = client.get(f"/api/v1/clusters/{cluster.id}/metrics/?series=lag,nope")
    assert bad.status_code == 400 and "nope" in json.dumps(bad.json())
    other, _ = tenant_client("elsewhere")
    assert other.get(f"/api/v1/clusters/{cluster.id}/metrics/").status_code == 404

    sandbox_cluster.sql(2, "STOP SLAVE SQL_THREAD")
    try:
        sandbox_cluster.sql(1, "CREATE DATABASE IF NOT EXISTS histdb")
        sandbox_cluster.sql(1, "CREATE TABLE IF NOT EXISTS histdb.t (id INT AUTO_INCREMENT PRIMARY KEY)")
        for _ in range(8):
            sandbox_cluster.sql(1, "INSERT INTO histdb.t VALUES ()")
            monitor_shard([cluster.id])
            time.sleep(0.5)
        lags = [v for v in lag_of(client, cluster.id, replica.id)[-6:] if v is not None]
        assert len(lags) >= 5 and lags[-1] >= 2.0 and lags == sorted(lags)
    finally:
        sandbox_cluster.sql(2, "START SLAVE SQL_THREAD")


@pytest.fixture
def metrics_http(transactional_db, clean_redis):
    port = free_port()
    daphne = str(Path(sys.executable).parent / "daphne")
    env = worker_environment() | {"DBPILOT_METRICS_TOKEN": TOKEN}
    process = ManagedProcess(
        "obs-daphne", [daphne, "-b", "127.0.0.1", "-p", str(port), "controlplane.asgi:application"], env
    )
    base = f"http://127.0.0.1:{port}"

    def answers():
        request = urllib.request.Request(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200

    wait_until(answers, 30, "daphne to serve /metrics")
    yield port
    process.stop()


def test_a_real_prometheus_scrapes_metrics_and_answers_a_replicas_lag(sandbox_cluster, metrics_http):
    _, created = tenant_client("promco")
    cluster = register(created.team, sandbox_cluster, name="promcluster")
    tick(cluster.id, 2)
    replica = address(sandbox_cluster, 2)
    prom_port = free_port()
    with tempfile.TemporaryDirectory(prefix="dbp-prom-") as work:
        config = Path(work) / "prometheus.yml"
        config.write_text(
            json.dumps(
                {  # JSON is YAML
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "dbpilot",
                            "metrics_path": "/metrics",
                            "authorization": {"type": "Bearer", "credentials": TOKEN},
                            "static_configs": [{"targets": [f"127.0.0.1:{metrics_http}"]}],
                        }
                    ],
                }
            )
        )
        process = ManagedProcess(
            "obs-prometheus",
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={work}/data",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            {"PATH": "/usr/bin:/bin"},
        )
        try:
            query = urllib.parse.urlencode(
                {
                    "query": f'dbpilot_replication_lag_seconds{{tenant="promco",'
                    f'cluster="promcluster",server="{replica}"}}'
                }
            )

            def lag_answer():
                monitor_shard([cluster.id])  # keep the hot state fresh while Prometheus starts
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{prom_port}/api/v1/query?{query}", timeout=2
                ) as response:
                    result = json.load(response)["data"]["result"]
                return result or None

            result = wait_until(lag_answer, 60, "Prometheus to answer the replica's lag", interval=0.5)
            (series,) = result
            assert series["metric"]["server"] == replica and series["metric"]["job"] == "dbpilot"
            latest = history.latest([cluster.id])[cluster.id]
            replica_id = cluster.servers.get(port=sandbox_cluster.port(2)).id
            assert float(series["value"][1]) == pytest.approx(latest[replica_id].lag, abs=1.0)
            up = urllib.parse.urlencode({"query": 'sum(dbpilot_server_up{cluster="promcluster"})'})
            with urllib.request.urlopen(
                f"http://127.0.0.1:{prom_port}/api/v1/query?{up}", timeout=2
            ) as response:
                assert float(json.load(response)["data"]["result"][0]["value"][1]) == 3.0
        finally:
            process.stop()

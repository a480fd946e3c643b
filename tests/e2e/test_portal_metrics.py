"""The Metrics tab against the whole stack (daphne, a Celery worker and beat, Redis, a real 3-node MariaDB
cluster): while the primary takes writes and a replica's SQL thread is stopped, the lag chart of that
replica rises in the browser, live. Screenshots go to tests/output/."""

from __future__ import annotations

import json
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.e2e.portal_server import (
    isolated_environment,
    manage,
    require_browser,
    run_interactive_scenario,
    start_portal_server,
)
from tests.services_plugin import ManagedProcess

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

EMAIL, PASSWORD = "mira@acme.example", "mira-portal-pass-1"


@pytest.fixture
def stack(sandbox_factory, tmp_path):
    from django.conf import settings

    require_browser()
    url = settings.REDIS_URL  # this session's own Redis database, flushed before use
    redis.Redis.from_url(url).flushdb()
    sandbox = sandbox_factory(3)
    env = isolated_environment(tmp_path / "var")
    env.pop("DBPILOT_IN_MEMORY_CHANNELS", None)
    env["REDIS_URL"] = url
    manage(env, "migrate", "--noinput", "-v", "0")
    token = (
        manage(
            env,
            "create_tenant",
            "acme",
            "--team",
            "ops",
            "--user",
            EMAIL,
            "--password",
            PASSWORD,
            "--token-scope",
            "admin",
        )
        .strip()
        .splitlines()[-1]
    )
    bin_dir = Path(sys.executable).parent
    processes = [
        ManagedProcess(
            "portal-metrics-worker",
            [
                str(bin_dir / "celery"),
                "-A",
                "controlplane",
                "worker",
                "-n",
                "portal-metrics@%h",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
            ],
            env,
        ),
        ManagedProcess(
            "portal-metrics-beat",
            [str(bin_dir / "celery"), "-A", "controlplane", "beat", "-s", str(tmp_path / "beat-schedule")],
            env,
        ),
    ]
    daphne, base = start_portal_server(env, name="portal-metrics-daphne")
    processes.append(daphne)
    described = sandbox.describe()
    body = {
        "name": "orders",
        "servers": [{"host": n["host"], "port": n["port"]} for n in described["nodes"]],
        "credentials": described["credentials"]["admin"],
        "replication_credentials": described["credentials"]["replication"],
    }
    request = urllib.request.Request(
        f"{base}/api/v1/clusters/",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        cluster = json.loads(response.read())
    yield {"base": base, "cluster": cluster, "sandbox": sandbox, "processes": processes}
    for process in processes:
        process.stop()
    redis.Redis.from_url(url).flushdb()


class Writes:
    """Inserts on the primary every 0.2 s until stopped."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.done = threading.Event()
        sandbox.sql(1, "CREATE DATABASE IF NOT EXISTS chartdb")
        sandbox.sql(1, "CREATE TABLE IF NOT EXISTS chartdb.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.done.wait(0.2):
            self.sandbox.sql(1, "INSERT INTO chartdb.t (v) VALUES (1)")

    def start(self):
        self.thread.start()

    def stop(self):
        self.done.set()
        self.thread.join(5)


def test_the_lag_chart_rises_live_while_a_replicas_sql_thread_is_stopped_under_writes(stack):
    sandbox = stack["sandbox"]
    replica = f"{sandbox.host(2)}:{sandbox.port(2)}"
    writes = Writes(sandbox)

    def stop_sql():
        sandbox.sql(2, "STOP SLAVE SQL_THREAD")
        writes.start()

    def start_sql():
        writes.stop()
        sandbox.sql(2, "START SLAVE SQL_THREAD")

    try:
        result = run_interactive_scenario(
            "portal_metrics.mjs",
            {
                "PORTAL_URL": stack["base"],
                "CLUSTER_ID": str(stack["cluster"]["id"]),
                "REPLICA": replica,
                "EMAIL": EMAIL,
                "PASSWORD": PASSWORD,
            },
            handlers={"stop_sql_under_writes": stop_sql, "start_sql": start_sql},
        )
    finally:
        writes.stop()
    logs = "\n".join(f"--- {p.name}\n{p.log_text()[-1500:]}" for p in stack["processes"])
    assert "failure" not in result, f"{result.get('failure')}\nsteps: {result['steps']}\n{logs}"
    steps = {step["name"]: step for step in result["steps"]}
    assert steps["healthy"]["lag"] is not None and steps["healthy"]["lag"] < 2
    lags = [s["lag"] for s in result["lags"] if s["lag"] is not None]
    print("lag seen in the browser, one reading a second:", lags)
    assert len(lags) >= 8 and lags[-1] >= 6, lags
    # Read every second, refreshed every 2 s: readings repeat, but the curve never goes down while stuck.
    assert all(b >= a for a, b in zip(lags, lags[1:], strict=False)) and lags[-1] > lags[0] + 5, lags
    assert steps["lagging"]["same_page"], "the page reloaded"
    assert steps["lagging"]["points"] > steps["healthy"]["points"]
    assert result["errors"] == [], result["errors"]

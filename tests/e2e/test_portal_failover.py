"""Automatic failover and a switchover seen in the browser, against the whole stack: daphne, a Celery
worker consuming every queue (ticks and the `ha` jobs), beat, Redis and a real 3-node semi-sync cluster
in automatic mode. A tenant operator watches the cluster page: the primary's mariadbd is SIGKILLed, the
graph shows the server the failover job promoted without a reload; the old primary is restarted and
rejoins as a replica; then the operator runs a switchover from the UI and sees its steps progress to `ok`. Screenshots go to tests/output/ (gitignored).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from datetime import datetime
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

ADMIN_EMAIL, ADMIN_PASSWORD = "amara@acme.example", "amara-portal-pass-1"
OPERATOR_EMAIL, OPERATOR_PASSWORD = "otto@acme.example", "otto-portal-pass-1"
REDIS_DB = 12  # this test's own Redis database: flushed before use
# Makes the tenant's first team's member OPERATOR_EMAIL an operator (run with `manage.py shell -c`).
ADD_OPERATOR = """
from django.contrib.auth import get_user_model
from tenants.models import Role, Team
from tenants.services import add_member
team = Team.objects.get(tenant__name="acme", name="ops")
user = get_user_model().objects.create_user(username="{email}", email="{email}", password="{password}")
add_member(team, user, Role.OPERATOR)
"""


def _redis_url() -> str:
    from django.conf import settings

    base = settings.REDIS_URL.rsplit("/", 1)[0] if settings.REDIS_URL.count("/") > 2 else settings.REDIS_URL
    return f"{base}/{REDIS_DB}"


class Api:
    """The control plane's HTTP API with the tenant admin's token."""

    def __init__(self, base: str, token: str):
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.base}/api/v1/{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def wait(self, what: str, fetch, done, timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            value = fetch()
            if done(value):
                return value
            if time.monotonic() > deadline:
                pytest.fail(
                    f"timed out after {timeout:.0f} s waiting for {what}; last: {json.dumps(value)[:2000]}"
                )
            time.sleep(0.2)


@pytest.fixture
def stack(sandbox_factory, tmp_path):
    require_browser()
    url = _redis_url()
    try:
        redis.Redis.from_url(url).flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} does not answer ({exc}); scripts/test.sh starts one")
    sandbox = sandbox_factory(3, semi_sync=True)
    env = isolated_environment(tmp_path / "var")
    env.pop("DBPILOT_IN_MEMORY_CHANNELS")  # the worker's messages reach daphne through Redis
    env["REDIS_URL"] = url
    # A pre_failover hook that takes 2 s: the failover job is on screen, running, long enough to be seen.
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "hold-2s").write_text("#!/bin/sh\nsleep 2\n")
    (hooks / "hold-2s").chmod(0o755)
    env["DBPILOT_HOOKS_DIR"] = str(hooks)
    manage(env, "migrate", "--noinput", "-v", "0")
    token = (
        manage(
            env,
            "create_tenant",
            "acme",
            "--team",
            "ops",
            "--user",
            ADMIN_EMAIL,
            "--password",
            ADMIN_PASSWORD,
            "--token-scope",
            "admin",
        )
        .strip()
        .splitlines()[-1]
    )
    manage(env, "shell", "-c", ADD_OPERATOR.format(email=OPERATOR_EMAIL, password=OPERATOR_PASSWORD))
    bin_dir = Path(sys.executable).parent
    processes = [  # no -Q: the worker consumes the ticks and the `ha` queue's jobs
        ManagedProcess(
            "portal-failover-worker",
            [
                str(bin_dir / "celery"),
                "-A",
                "controlplane",
                "worker",
                "-n",
                "portal-failover@%h",
                "--concurrency",
                "3",
                "--without-gossip",
                "--without-mingle",
            ],
            env,
        ),
        ManagedProcess(
            "portal-failover-beat",
            [str(bin_dir / "celery"), "-A", "controlplane", "beat", "-s", str(tmp_path / "beat-schedule")],
            env,
        ),
    ]
    daphne, base = start_portal_server(env, name="portal-failover-daphne")
    processes.append(daphne)
    api = Api(base, token)
    try:
        described = sandbox.describe()
        cluster = api.call(
            "POST",
            "clusters/",
            {
                "name": "orders",
                "servers": [{"host": n["host"], "port": n["port"]} for n in described["nodes"]],
                "credentials": described["credentials"]["admin"],
                "replication_credentials": described["credentials"]["replication"],
                "settings": {"pre_failover": "hold-2s"},
            },
        )
        api.call(
            "PATCH", f"clusters/{cluster['id']}/", {"failover_mode": "automatic"}
        )  # starts the adopt job
        cluster = api.wait(
            "the adopt job to arm automatic failover",
            lambda: api.call("GET", f"clusters/{cluster['id']}/"),
            lambda c: c["failover_armed"] or (c.get("job") or {}).get("state") in ("failed", "refused"),
            timeout=60,
        )
        assert cluster["failover_armed"], cluster.get("job")
        # Some data, as a real cluster has: a switchover waits for the candidate to reach the old primary's GTID
        # position, which an untouched cluster does not have (its wait fails with "position unknown").
        sandbox.sql(1, "CREATE DATABASE shop")
        sandbox.sql(1, "CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(40))")
        sandbox.sql(1, "INSERT INTO shop.orders VALUES (1, 'teapot'), (2, 'kettle')")
        yield {"api": api, "base": base, "cluster": cluster, "sandbox": sandbox, "processes": processes}
    finally:
        for process in processes:
            process.stop()


def _failover_job(api: Api, cluster_id: int) -> dict:
    """The cluster's failover job once it finished (the worker starts it when the tick confirms the failure)."""

    def fetch():
        listed = api.call("GET", f"clusters/{cluster_id}/jobs/?page_size=50")["results"]
        return [job for job in listed if job["kind"] == "failover"]

    jobs = api.wait(
        "the failover job to finish",
        fetch,
        lambda jobs: jobs and jobs[0]["state"] not in ("pending", "running"),
        timeout=60,
    )
    return api.call("GET", f"jobs/{jobs[0]['id']}/")


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_portal_follows_an_automatic_failover_and_a_switchover_live(stack):
    api, sandbox, cluster_id = stack["api"], stack["sandbox"], stack["cluster"]["id"]
    primary = f"{sandbox.host(1)}:{sandbox.port(1)}"
    failover_job: dict = {}

    def failover_finished() -> str:
        failover_job.update(_failover_job(api, cluster_id))
        return json.dumps(
            {
                "id": failover_job["id"],
                "state": failover_job["state"],
                "new_primary": failover_job["result"].get("new_primary"),
            }
        )

    result = run_interactive_scenario(
        "portal_failover.mjs",
        {
            "PORTAL_URL": stack["base"],
            "CLUSTER_ID": str(cluster_id),
            "CLUSTER_NAME": "orders",
            "OLD_PRIMARY": primary,
            "EMAIL": OPERATOR_EMAIL,
            "PASSWORD": OPERATOR_PASSWORD,
        },
        handlers={
            "kill_primary": lambda: sandbox.kill(1),
            "failover_finished": failover_finished,
            "restart_old_primary": lambda: sandbox.start(1),
        },
    )
    if "failure" in result:  # what the jobs did, to explain the failure
        jobs = api.call("GET", f"clusters/{cluster_id}/jobs/?page_size=5")["results"]
        for job in jobs:
            print(
                job["id"],
                job["kind"],
                job["state"],
                job["result"].get("detail"),
                [
                    (s["name"], s["state"], s["started_at"], s["finished_at"], s["detail"])
                    for s in job["steps"]
                ],
            )
    logs = "\n".join(f"--- {p.name}\n{p.log_text()[-4000:]}" for p in stack["processes"])
    assert "failure" not in result, (
        f"{result.get('failure')}\nsteps: {result['steps']}\n"
        f"step states seen: {result.get('failure_steps')}\n{logs}"
    )
    steps = {step["name"]: step for step in result["steps"]}

    assert steps["clusters_list"]["row"].count("orders") == 1
    assert steps["cluster_page"]["primary"] == primary
    assert steps["cluster_page"]["role"] == "operator"

    assert failover_job["state"] == "succeeded", (failover_job.get("result"), logs)
    assert failover_job["params"].get("automatic") is True
    promoted = failover_job["result"]["new_primary"]
    assert promoted in (f"{sandbox.host(n)}:{sandbox.port(n)}" for n in (2, 3))
    shown = steps["failover_shown"]
    during = steps["failover_running"]
    print(
        "during the failover the page showed:",
        (during["job_panel"] or "no running job panel").splitlines()[0],
    )
    assert during["primary"] == primary, (
        during
    )  # the "during" screenshot shows the dead primary before the promotion
    assert shown["primary"] == promoted, shown
    assert shown["same_page"], "the page reloaded during the failover"
    lag = shown["shown_at_ms"] / 1000 - _epoch(failover_job["finished_at"])
    print(
        f"new primary shown {shown['seconds_after_kill']:.1f} s after SIGKILL, {lag:+.2f} s after the failover job finished"
    )
    assert lag <= 3, f"the graph showed the new primary {lag:.1f} s after the failover job finished"

    assert steps["old_primary_back"]["role"] != "primary", steps[
        "old_primary_back"
    ]  # rejoined, not a second primary

    switchover = steps["switchover"]
    candidate = next(
        f"{sandbox.host(n)}:{sandbox.port(n)}"
        for n in (2, 3)
        if f"{sandbox.host(n)}:{sandbox.port(n)}" != promoted
    )
    assert switchover["candidate"] == candidate
    job = api.call("GET", f"jobs/{switchover['job_id']}/")
    failed = [(s["name"], s["detail"]) for s in job["steps"] if s["state"] == "failed"]
    assert switchover["state"] == "succeeded", (job["result"].get("detail"), failed, switchover)
    assert (
        switchover["final"] and set(switchover["final"]) <= {"ok", "skipped"} and "ok" in switchover["final"]
    ), switchover
    assert any(set(states) != {"ok"} for states in switchover["snapshots"][:-1]), (
        f"no step was seen before it was ok: {switchover['snapshots']}"
    )
    assert job["kind"] == "switchover" and job["state"] == "succeeded", job.get("result")
    assert [s["state"] for s in job["steps"]] == switchover["final"]
    after = steps["after_switchover"]
    assert after["primary"] == candidate and after["same_page"], after
    assert result["errors"] == [], result["errors"]

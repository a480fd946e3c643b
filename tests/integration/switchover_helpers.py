"""Helpers shared by the switchover tests: register a sandbox, run a switchover in-process, check the
invariants a switchover must leave behind, and put the sandbox back in shape between tests."""

from __future__ import annotations

import time

from clusters.jobs.engine import run_job
from clusters.models import Job
from clusters.services.switchover import request_switchover
from tests.integration.monitoring_helpers import forget_connections, register, tenant_client
from tests.writer import Writer


def address(sandbox, node: int) -> str:
    return f"{sandbox.host(node)}:{sandbox.port(node)}"


def node_of(sandbox, addr: str) -> int:
    return next(n for n in sandbox.nodes if address(sandbox, n) == addr)


def register_sandbox(sandbox, name: str = "main", **settings):
    _, created = tenant_client()
    return register(created.team, sandbox, name, **settings), created


def switchover(cluster, candidate: str | None = None, **options) -> Job:
    """Request and run a switchover in this process (the same service function the API calls)."""
    job = request_switchover(cluster, candidate=candidate, requested_by="test", enqueue=False, **options)
    finished = run_job(job.id)
    assert finished is not None, "the job could not be claimed"
    return finished


def step(job: Job, name: str) -> dict:
    return next(s for s in job.steps if s["name"] == name)


def writer_for(sandbox, rate: float = 200.0) -> Writer:
    app = sandbox.accounts.app
    return Writer([address(sandbox, n) for n in sandbox.nodes], app.user, app.password, rate=rate)


def assert_one_writable_primary(sandbox, primary: int, timeout: float = 10.0) -> None:
    """The invariants: `primary` writable with no source; every other node read-only, replicating from it
    by GTID with both threads running, a 1 s connect retry and heartbeat."""
    assert sandbox.sql(primary, "SELECT @@read_only AS ro")[0]["ro"] == 0
    assert sandbox.replication_status(primary) is None
    deadline = time.monotonic() + timeout
    for node in sandbox.nodes:
        if node == primary:
            continue
        assert sandbox.sql(node, "SELECT @@read_only AS ro")[0]["ro"] == 1, f"node {node} is writable"
        while True:
            status = sandbox.replication_status(node)
            running = status and status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"
            if running or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert status is not None, f"node {node} replicates from nothing"
        assert (status["Master_Host"], int(status["Master_Port"])) == (
            sandbox.host(primary),
            sandbox.port(primary),
        )
        assert status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes", status[
            "Last_IO_Error"
        ]
        assert status["Using_Gtid"] == "Slave_Pos"
        assert int(status["Connect_Retry"]) == 1
    sandbox.primary = primary


def restore_sandbox(sandbox) -> int:
    """Put a sandbox back in shape after a test that broke it on purpose: unlock, threads running,
    read_only where it belongs, max_connections back. Returns the primary's node number."""
    forget_connections(sandbox)
    for node in sandbox.nodes:
        sandbox.sql(node, "SET GLOBAL max_connections=400")
    primary = sandbox.find_primary()
    for node in sandbox.nodes:
        if node == primary:
            sandbox.sql(node, "SET GLOBAL read_only=0")
            continue
        sandbox.sql(node, "SET GLOBAL read_only=1")
        status = sandbox.replication_status(node)
        if status and int(status["SQL_Delay"] or 0):
            for statement in ("STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=0", "START SLAVE"):
                sandbox.sql(node, statement)
        elif status and (status["Slave_IO_Running"] != "Yes" or status["Slave_SQL_Running"] != "Yes"):
            sandbox.sql(node, "START SLAVE")
    sandbox.wait_replicating(timeout=30, primary=primary)
    sandbox.primary = primary
    return primary

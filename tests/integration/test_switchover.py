"""Planned switchover on a real 3-node semi-sync cluster: two in a row under a writer, every step recorded,
no acknowledged write lost, one writable primary, replicas replicating read-only."""

from __future__ import annotations

import secrets

import pytest

from clusters.models import Event
from clusters.providers import LocalSandbox
from tenants.models import AuditEntry
from tests.integration.switchover_helpers import (
    address,
    assert_one_writable_primary,
    register_sandbox,
    restore_sandbox,
    step,
    switchover,
    writer_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def semi_sync_sandbox():
    sandbox = LocalSandbox(f"t-{secrets.token_hex(4)}", 3, semi_sync=True, temporary=True)
    sandbox.up()
    yield sandbox
    sandbox.destroy()


@pytest.fixture
def hooks_log(settings, tmp_path):
    """pre and post hooks that append their argv and DBPILOT_* environment to a file."""
    settings.DBPILOT_HOOKS_DIR = tmp_path
    log = tmp_path / "calls.log"
    for name in ("before", "after"):
        script = tmp_path / name
        script.write_text(
            f'#!/bin/sh\necho "{name} $* | $DBPILOT_EVENT $DBPILOT_PHASE $DBPILOT_CLUSTER '
            f'$DBPILOT_OLD_PRIMARY $DBPILOT_NEW_PRIMARY" >> {log}\necho {name} ran\n'
        )
        script.chmod(0o755)
    return log


@pytest.fixture
def cluster(semi_sync_sandbox, clean_redis, hooks_log):
    restore_sandbox(semi_sync_sandbox)
    registered, _ = register_sandbox(semi_sync_sandbox, pre_failover="before", post_failover="after")
    yield registered, semi_sync_sandbox
    restore_sandbox(semi_sync_sandbox)


@pytest.mark.jobs  # also run on PostgreSQL by scripts/test.sh
def test_two_switchovers_in_a_row_lose_no_acknowledged_write(cluster, hooks_log):
    registered, sandbox = cluster
    first = sandbox.primary
    others = [n for n in sandbox.nodes if n != first]
    for statement in ("STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=1", "START SLAVE"):  # a delayed replica
        sandbox.sql(others[1], statement)
    writer = writer_for(sandbox).start()
    try:
        writer.wait_for_acks(50)
        there = switchover(registered, candidate=address(sandbox, others[0]))
        assert there.state == "succeeded", there.result
        writer.wait_for_acks(50)
        back = switchover(registered, candidate=address(sandbox, first))
        assert back.state == "succeeded", back.result
        writer.wait_for_acks(50)
    finally:
        writer.stop()
    assert there.result["old_primary"] == address(sandbox, first)
    assert there.result["new_primary"] == address(sandbox, others[0])
    assert back.result["new_primary"] == address(sandbox, first)
    assert_one_writable_primary(sandbox, first)
    sandbox.wait_replicating(primary=first)
    for node in sandbox.nodes:
        assert not writer.missing_on(address(sandbox, node)), f"node {node} lacks acknowledged rows"
    assert all(s["state"] in ("ok", "skipped") for s in there.steps), there.steps
    assert [s["name"] for s in there.steps][:5] == [
        "verify_replication_settings",
        "check_replication",
        "start_stopped_replicas",
        "check_long_transactions",
        "elect_candidate",
    ]
    assert there.result["gtid"]["old_primary_final"]
    assert there.result["routes_ok"] is True
    assert set(there.result["timings_ms"]) == {s["name"] for s in there.steps}
    registered.refresh_from_db()
    assert registered.primary.address == address(sandbox, first)
    assert registered.last_job_id == back.id
    assert registered.epoch >= 5  # two freezes and two recorded primaries
    kinds = list(Event.objects.filter(cluster=registered).values_list("kind", flat=True))
    assert kinds.count("job_finished") == 2 and kinds.count("primary_changed") == 2
    assert AuditEntry.objects.filter(
        action="job.switchover", target=f"job:{there.id}", result="succeeded"
    ).exists()
    assert "semi-sync" in step(there, "promote_candidate")["detail"]
    assert "IO and SQL running" in step(back, "verify_replication")["detail"]
    assert step(there, "pre_failover_hook")["output"] == "before ran\n"
    a, b = address(sandbox, first), address(sandbox, others[0])
    label = registered.label
    assert hooks_log.read_text().splitlines() == [
        f"before switchover pre {label} {a} {b} | switchover pre {label} {a} {b}",
        f"after switchover post {label} {a} {b} | switchover post {label} {a} {b}",
        f"before switchover pre {label} {b} {a} | switchover pre {label} {b} {a}",
        f"after switchover post {label} {b} {a} | switchover post {label} {b} {a}",
    ]
    assert int(sandbox.replication_status(others[1])["SQL_Delay"]) == 1  # kept through both repoints
    # The demoted primary is a healthy replica, not a fenced server; max_connections came back.
    assert not registered.servers.filter(fenced=True).exists()
    assert sandbox.sql(others[0], "SELECT @@max_connections AS m")[0]["m"] == 400
    assert back.result["write_freeze_ms"] > 0 and back.result["gtid"]["new_primary_at_promotion"]

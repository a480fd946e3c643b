"""Detection and failover by dbpilot's real processes (beat, a worker consuming every queue): the primary is
SIGKILLed, a tick in the worker confirms it and starts the failover at once in that worker; the worker is
killed while the job waits in its pre_failover hook; beat's reaper hands the job to a new worker, which
resumes it at that hook (the steps before it were saved). Every step, killed after it, without the real
reaper: tests/integration/test_failover_resume.py. At no instant are two servers writable, and the job ends with one writable primary."""

from __future__ import annotations

import signal
import time

import pytest

from clusters.models import Event, Job
from tests.integration.failover_helpers import follows, register_cluster, writable_nodes
from tests.integration.switchover_helpers import node_of
from tests.services_plugin import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _ready(process) -> bool:
    return " ready." in process.log_text()


@pytest.mark.jobs  # also run on PostgreSQL by scripts/test.sh
def test_a_worker_killed_mid_failover_is_resumed_by_the_reaper(
    sandbox_factory, dbpilot_processes, settings, tmp_path, monkeypatch
):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    started = tmp_path / "hook-started"
    script = hooks / "slow-pre"
    script.write_text(f"#!/bin/sh\necho $$ >> {started}\nsleep 3\n")
    script.chmod(0o755)
    monkeypatch.setenv("DBPILOT_HOOKS_DIR", str(hooks))  # the workers read it at start
    settings.DBPILOT_HOOKS_DIR = hooks
    settings.DBPILOT_FAILOVER_RUNNER = "inline"  # the adopt job, in this process

    sandbox = sandbox_factory(3)
    cluster = register_cluster(sandbox, failover_mode="automatic", pre_failover="slow-pre")
    assert cluster.failover_armed
    first = dbpilot_processes(name="fo-first", concurrency=2)
    dbpilot_processes("beat", name="fo-beat")
    wait_for(lambda: _ready(first), 30, message="the first worker")
    wait_for(
        lambda: Event.objects.filter(cluster=cluster, kind="primary_observed").exists(),
        20,
        message="the worker's first tick",
    )

    sandbox.kill(1, signal.SIGKILL)
    wait_for(started.exists, 20, interval=0.05, message="the failover to reach its pre_failover hook")
    time.sleep(0.5)  # still in the 3 s hook; the steps before it are saved by now (within 0.25 s)
    job = Job.objects.get(cluster=cluster, kind="failover")
    assert job.state == "running" and job.params["automatic"] is True
    first.kill(signal.SIGKILL)
    assert writable_nodes(sandbox) == []  # nothing promoted yet

    second = dbpilot_processes(name="fo-second", concurrency=2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert len(writable_nodes(sandbox)) <= 1, "two writable servers"
        job.refresh_from_db()
        if job.state not in ("pending", "running"):
            break
        time.sleep(0.1)
    assert job.state == "succeeded", (job.state, job.result.get("detail"), second.log_text()[-2000:])
    assert job.attempts == 2
    assert Event.objects.filter(cluster=cluster, kind="job_reaped", data__job_id=job.id).exists()
    # The steps before the hook were saved in the background as they finished: the resumed job continues
    # at the hook, whose own step never finished (killed while it ran), so it runs again, and only it.
    resumed = Event.objects.get(cluster=cluster, kind="job_resumed", data__job_id=job.id)
    assert "at step pre_failover_hook" in resumed.message, resumed.message
    assert len(started.read_text().split()) == 2
    new = node_of(sandbox, job.result["new_primary"])
    other = next(n for n in (2, 3) if n != new)
    assert writable_nodes(sandbox) == [new]
    wait_for(lambda: follows(sandbox, other, new), 10, message="the other replica to follow the new primary")
    assert Job.objects.filter(cluster=cluster, kind="failover").count() == 1


# What a worker that lost its lease must never do again: any of these after the hand-over is a change.
_HA_CHANGES = (
    "primary_changed",
    "job_started",
    "job_finished",
    "job_reaped",
    "writes_reopened",
    "server_fenced",
    "server_unfenced",
    "server_rejoined",
    "server_quarantined",
)


@pytest.mark.jobs
def test_a_worker_stalled_past_its_lease_changes_nothing_once_its_job_was_handed_over(
    sandbox_factory, dbpilot_processes, settings, tmp_path, monkeypatch
):
    """The lease is a fencing token: the worker running the failover is frozen (SIGSTOP, its whole process
    group) while the job waits in its pre_failover hook; beat's reaper hands the job to a second worker,
    which finishes it; then the first worker is resumed (SIGCONT) and must change nothing: no second
    promotion, no abort, no event, the second worker's topology stays."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    started = tmp_path / "hook-started"
    script = hooks / "slow-pre"
    script.write_text(f"#!/bin/sh\necho $$ >> {started}\nsleep 3\n")
    script.chmod(0o755)
    monkeypatch.setenv("DBPILOT_HOOKS_DIR", str(hooks))
    settings.DBPILOT_HOOKS_DIR = hooks
    settings.DBPILOT_FAILOVER_RUNNER = "inline"

    sandbox = sandbox_factory(3)
    cluster = register_cluster(sandbox, failover_mode="automatic", pre_failover="slow-pre")
    assert cluster.failover_armed
    first = dbpilot_processes(name="fo-stalled", concurrency=2)
    beat = dbpilot_processes("beat", name="fo-beat2")
    wait_for(lambda: _ready(first), 30, message="the first worker")
    wait_for(
        lambda: Event.objects.filter(cluster=cluster, kind="primary_observed").exists(),
        20,
        message="the worker's first tick",
    )

    sandbox.kill(1, signal.SIGKILL)
    wait_for(started.exists, 20, interval=0.05, message="the failover to reach its pre_failover hook")
    job = Job.objects.get(cluster=cluster, kind="failover")
    first.kill(signal.SIGSTOP)  # frozen mid-job: its lease is no longer renewed
    try:
        second = dbpilot_processes(name="fo-takeover", concurrency=2)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert len(writable_nodes(sandbox)) <= 1, "two writable servers"
            job.refresh_from_db()
            if job.state not in ("pending", "running"):
                break
            time.sleep(0.1)
        assert job.state == "succeeded", (job.state, job.result.get("detail"), second.log_text()[-2000:])
        assert job.attempts == 2
        second.stop()  # only the first worker is left to act, and no new tick is sent
        beat.stop()
        new = node_of(sandbox, job.result["new_primary"])
        other = next(n for n in (2, 3) if n != new)
        wait_for(
            lambda: follows(sandbox, other, new), 10, message="the other replica to follow the new primary"
        )
        last_event = (
            Event.objects.filter(cluster=cluster).order_by("-id").values_list("id", flat=True).first()
        )
        finished = (job.state, job.steps, job.result, job.finished_at)
    finally:
        first.kill(signal.SIGCONT)
    wait_for(
        lambda: f"job {job.id}: lease lost or past its deadline" in first.log_text(),
        20,
        message="the resumed first worker to stop at its next step",
    )
    time.sleep(2)  # anything it would still do, it would have done by now
    job.refresh_from_db()
    assert (job.state, job.steps, job.result, job.finished_at) == finished
    changes = Event.objects.filter(cluster=cluster, id__gt=last_event, kind__in=_HA_CHANGES)
    assert not changes.exists(), list(changes.values_list("kind", "message"))
    assert writable_nodes(sandbox) == [new]
    assert follows(sandbox, other, new)
    assert Job.objects.filter(cluster=cluster, kind="failover").count() == 1

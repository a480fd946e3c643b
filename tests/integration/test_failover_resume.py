"""A failover whose worker dies after any one of its steps is resumed by another worker and ends correctly,
on a real 3-node semi-sync cluster under a writer: exactly one writable server at every observation, the
surviving replica follows the new primary, no acknowledged write lost, and a hook whose step was saved as
done never runs again.

Fast, without the real reaper's 17 s (lease + grace; tests/integration/test_failover_worker.py has that
test): the job runs in a forked child process that SIGKILLs itself at the chosen point; the test then hands
the job over as the reaper does (`lease_owner = reaper:handoff`) and runs `engine.run_job` in this
process. Two kill points:

- `saved`: after step N's outcome was saved (the child waits until the database has it, then dies as the
  next step starts): the resumed job continues after step N;
- `lost`: right after step N's function returned, before its outcome could be saved: the resumed job
  runs step N again (or an earlier one whose background save was lost too), which must be harmless.

The last test gives a job up (its next claim is past MAX_ATTEMPTS) right after a step whose outcome was
lost: the abort must judge from what the servers say, not from the saved flags.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from clusters import hotstate
from clusters.adapters import probe
from clusters.adapters.mysql import POOL
from clusters.jobs import engine, failover_steps
from clusters.jobs import steps as s
from clusters.models import Event, Job
from clusters.routes import notify
from clusters.services import monitoring, primary_watch
from tests.integration.failover_helpers import (
    follows,
    register_cluster,
    server,
    tick_until,
    wait_applied,
    writable_nodes,
)
from tests.integration.switchover_helpers import address, node_of, writer_for
from tests.services_plugin import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

STEPS = failover_steps.PLAN.names
HOOK_STEPS = {"fence_hook": "fence", "pre_failover_hook": "pre", "post_failover_hook": "post"}

# Every step but the last once its outcome was saved, and every step up to open_writes and one after
# with its outcome lost: about 1.5 s a case on 2 busy cores.
CASES = [(step, "saved") for step in STEPS[:-1]] + [
    (step, "lost") for step in STEPS[: STEPS.index("open_writes") + 2]
]


def _hooks(tmp_path, settings):
    directory = tmp_path / "hooks"
    directory.mkdir()
    for name in HOOK_STEPS.values():
        script = directory / f"mark-{name}"
        script.write_text(f"#!/bin/sh\necho $$ >> {tmp_path / name}.runs\n")
        script.chmod(0o755)
    settings.DBPILOT_HOOKS_DIR = directory
    return lambda name: (
        len((tmp_path / f"{name}.runs").read_text().split()) if (tmp_path / f"{name}.runs").exists() else 0
    )


def _finished(job_id: int, step: str) -> bool:
    steps = Job.objects.filter(pk=job_id).values_list("steps", flat=True).first() or []
    return any(r["name"] == step and r["state"] in s.FINISHED_STATES for r in steps)


def _dying_plan(step: str, mode: str, job_id: int) -> s.Plan:
    """The failover plan, wrapped to SIGKILL this process at the chosen point."""
    index = STEPS.index(step)

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def after(run):
        def wrapped(ctx):
            outcome = run(ctx)
            die()  # before the engine records the outcome: it is lost
            return outcome

        return wrapped

    def before(run):
        def wrapped(ctx):
            deadline = time.monotonic() + 10
            while not _finished(job_id, step) and time.monotonic() < deadline:
                time.sleep(0.01)  # the recorder thread saves step N's outcome in the background
            die()
            return run(ctx)

        return wrapped

    specs = list(failover_steps.PLAN.steps)
    if mode == "lost":
        specs[index] = s.StepSpec(**{**specs[index].__dict__, "run": after(specs[index].run)})
    else:
        nxt = specs[index + 1]
        specs[index + 1] = s.StepSpec(**{**nxt.__dict__, "run": before(nxt.run)})
    plan = failover_steps.PLAN
    return s.Plan(kind=plan.kind, steps=tuple(specs), context=plan.context, abort=plan.abort)


def _fresh_executors() -> None:
    """A forked child has none of its parent's threads: the module-level pools would wait forever for
    workers that do not exist there, so the child gets new ones."""
    for module, name in (
        (probe, "_EXECUTOR"),
        (notify, "_EXECUTOR"),
        (monitoring, "_REPROBE_EXECUTOR"),
        (primary_watch, "_CONNECTING"),
    ):
        old = getattr(module, name)
        setattr(module, name, ThreadPoolExecutor(max_workers=old._max_workers, thread_name_prefix="child"))


def _run_in_a_child_that_dies(job_id: int, step: str, mode: str, addresses: list[str]) -> None:
    connections.close_all()  # the child opens its own database connection
    for addr in addresses:
        POOL.discard_address(addr)  # and its own server connections: none shared across the fork
    pid = os.fork()
    if pid == 0:  # the child: run the job until it kills itself; never return into pytest
        code = 3
        try:
            _fresh_executors()
            engine._PLANS[failover_steps.KIND] = _dying_plan(step, mode, job_id)
            engine.run_job(job_id, owner="doomed-worker")
            code = 4  # the job ended without reaching the kill point
        finally:
            os._exit(code)
    deadline = time.monotonic() + 90
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the doomed worker did not reach its kill point in time")
        time.sleep(0.02)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
        f"the doomed worker exited instead of dying (status {status}): "
        f"{Job.objects.get(pk=job_id).result.get('detail')}"
    )


class _Observer(threading.Thread):
    """Counts the writable servers every few tens of milliseconds while the job is resumed."""

    def __init__(self, sandbox):
        super().__init__(daemon=True)
        self.sandbox = sandbox
        self.seen: list[list[int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.seen.append(writable_nodes(self.sandbox))
            time.sleep(0.03)


def _failover_of_a_killed_primary(sandbox, cluster) -> Job:
    """SIGKILL the primary (node 1) once the ticks know the replicas' lags; the manual failover's job, with
    the parameters clusters.services.failover.request_failover gives it (not run)."""
    primary = address(sandbox, 1)
    tick_until(cluster, lambda: len(hotstate.read_lags(cluster.id)) == 2, message="the replicas' lags")
    sandbox.kill(1, signal.SIGKILL)
    wait_for(
        lambda: all((sandbox.replication_status(n) or {}).get("Slave_IO_Running") != "Yes" for n in (2, 3)),
        10,
        message="the replicas to notice the dead primary",
    )
    return engine.create_job(
        cluster,
        failover_steps.KIND,
        params={
            "automatic": False,
            "primary": primary,
            "confirmed_at": time.time(),
            "lags": hotstate.read_lags(cluster.id),
            "semi_sync_at_incident": hotstate.read_semi_sync_at(cluster.id, primary),
        },
        requested_by="test",
    )


def _saved_steps(job: Job) -> set[str]:
    job.refresh_from_db()
    return {r["name"] for r in job.steps if r["state"] in s.FINISHED_STATES}


@pytest.mark.jobs  # also run on PostgreSQL by scripts/test.sh
@pytest.mark.parametrize("step, mode", CASES, ids=[f"{m}-after-{st}" for st, m in CASES])
def test_a_failover_whose_worker_died_after_a_step_is_resumed_to_a_correct_end(
    step, mode, sandbox_factory, settings, tmp_path, clean_redis
):
    runs = _hooks(tmp_path, settings)
    sandbox = sandbox_factory(3, semi_sync=True)
    cluster = register_cluster(
        sandbox, fence="mark-fence", fence_required=True, pre_failover="mark-pre", post_failover="mark-post"
    )
    addresses = [address(sandbox, n) for n in sandbox.nodes]
    writer = writer_for(sandbox)
    writer.start()
    try:
        writer.wait_for_acks(20)
        job = _failover_of_a_killed_primary(sandbox, cluster)
        _run_in_a_child_that_dies(job.pk, step, mode, addresses)
        saved = _saved_steps(job)
        assert job.state == "running" and job.attempts == 1
        assert (step in saved) == (mode == "saved")
        hook_runs = {name: runs(name) for name in HOOK_STEPS.values()}
        assert len(writable_nodes(sandbox)) <= 1

        # What the reaper does once the lease expired plus its grace: hand the job over.
        Job.objects.filter(pk=job.pk).update(lease_owner=engine.HANDOFF_OWNER)
        observer = _Observer(sandbox)
        observer.start()
        try:
            finished = engine.run_job(job.pk)
        finally:
            observer.stopping.set()
            observer.join()
        assert finished is not None
        assert finished.state == "succeeded", (finished.state, finished.result.get("detail"))
        assert finished.attempts == 2
        assert all(len(seen) <= 1 for seen in observer.seen), [w for w in observer.seen if len(w) > 1]

        resumed_at = next(r["name"] for r in job.steps if r["state"] not in s.FINISHED_STATES)
        event = Event.objects.get(cluster=cluster, kind="job_resumed", data__job_id=job.pk)
        assert f"at step {resumed_at}" in event.message
        for hook_step, name in HOOK_STEPS.items():
            if hook_step in saved:
                assert runs(name) == hook_runs[name], f"{name} hook ran again though its step was saved"
            else:
                assert runs(name) == hook_runs[name] + 1, f"{name} hook: {hook_runs[name]} then {runs(name)}"

        new = node_of(sandbox, finished.result["new_primary"])
        other = next(n for n in (2, 3) if n != new)
        assert writable_nodes(sandbox) == [new]
        wait_for(
            lambda: follows(sandbox, other, new), 15, message="the other replica to follow the new primary"
        )
        on_new = address(sandbox, new)
        wait_for(
            lambda: sum(1 for ack in writer.acks if ack.server == on_new) > 20,
            15,
            message="writes on the new primary",
        )
    finally:
        writer.stop()
    wait_applied(sandbox, other, new)
    assert not writer.missing_on(address(sandbox, new)), "acknowledged rows lost"
    assert not writer.missing_on(address(sandbox, other)), "acknowledged rows missing on the replica"


# (step whose outcome is lost, fence hook configured) -> what the abort must see and do
GIVE_UP_CASES = [
    ("stop_replication", False),  # nothing promoted: the replicas follow the old primary again
    ("stop_replication", True),  # ... but never once a fence ran: they stay stopped
    ("promote_candidate", False),  # promoted though not saved: the candidate stays read-only
    ("open_writes", False),  # writes opened though not saved: the failover took effect
]


@pytest.mark.jobs
@pytest.mark.parametrize("step, fence", GIVE_UP_CASES, ids=[f"{st}-fence-{f}" for st, f in GIVE_UP_CASES])
def test_a_failover_given_up_after_a_lost_save_is_aborted_from_what_the_servers_say(
    step, fence, sandbox_factory, settings, tmp_path, clean_redis
):
    _hooks(tmp_path, settings)
    sandbox = sandbox_factory(3, semi_sync=True)
    cluster = register_cluster(sandbox, **({"fence": "mark-fence"} if fence else {}))
    addresses = [address(sandbox, n) for n in sandbox.nodes]
    job = _failover_of_a_killed_primary(sandbox, cluster)
    _run_in_a_child_that_dies(job.pk, step, "lost", addresses)
    assert step not in _saved_steps(job)
    # The next claim is past MAX_ATTEMPTS: the engine gives up and runs the abort on the saved state.
    Job.objects.filter(pk=job.pk).update(lease_owner=engine.HANDOFF_OWNER, attempts=engine.MAX_ATTEMPTS)
    finished = engine.run_job(job.pk)
    assert finished is not None and finished.state == "failed"
    detail = finished.result["detail"]
    assert "gave up" in detail
    old = server(cluster, sandbox, 1)
    if step == "stop_replication":
        assert finished.result["abort_decision"]["phase"] == "not_promoted"
        assert writable_nodes(sandbox) == []
        for node in (2, 3):
            status = sandbox.replication_status(node)
            assert (status["Master_Host"], int(status["Master_Port"])) == (sandbox.host(1), sandbox.port(1))
            running = status["Slave_IO_Running"] != "No"
            assert running != fence, (node, status["Slave_IO_Running"], detail)
        assert old.fenced == fence, detail  # the job's own flag given back, unless a fence ran
    elif step == "promote_candidate":
        assert finished.result["abort_decision"]["phase"] == "promoted"
        assert "stays read-only" in detail
        assert "the job saved it" not in detail  # seen on the candidate: its save was lost
        assert writable_nodes(sandbox) == []
        assert old.fenced
    else:
        assert finished.result["abort_decision"]["phase"] == "writes_open"
        new = node_of(sandbox, finished.result["new_primary"])
        assert writable_nodes(sandbox) == [new]
        cluster.refresh_from_db()
        assert cluster.primary.address == address(sandbox, new), detail
        assert old.fenced

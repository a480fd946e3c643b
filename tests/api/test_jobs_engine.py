"""The job engine against the control-plane database (no servers): one HA job per cluster, single-flight
claims, step records, refusals and failures with their abort, the lease, the reaper, resuming, giving up.

Fake plans stand in for switchover/failover; they run on the real engine (threads and all), so these
tests use committed transactions (the lease thread has its own database connection).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.jobs import engine
from clusters.jobs import steps as s
from clusters.models import Cluster, Event, Job
from tenants.models import AuditEntry, Tenant

pytestmark = pytest.mark.django_db(transaction=True)

FAKE_KIND = "rejoin"  # an HA kind with no plan of its own yet: the fake plan stands in for it


class FakeContext:
    def __init__(self, job, result):
        self.job = job
        self.result = result
        self.closed = False
        self.aborted: list[tuple[str, str]] = []

    def close(self):
        self.closed = True
        CONTEXTS.append(self)


CONTEXTS: list[FakeContext] = []
CALLS: list[str] = []


def _abort(ctx, step, reason):
    ctx.aborted.append((step, reason))
    return f"undid what {step} did"


def _step(name, outcome=None):
    def run(ctx):
        CALLS.append(name)
        if callable(outcome):
            return outcome(ctx)
        return outcome if outcome is not None else f"{name} done"

    return s.StepSpec(name, run)


@pytest.fixture
def fake_plan(monkeypatch):
    CONTEXTS.clear()
    CALLS.clear()
    sent: list[int] = []
    monkeypatch.setattr(engine, "enqueue_job", sent.append)

    def install(*specs):
        plan = s.Plan(FAKE_KIND, tuple(specs), context=FakeContext, abort=_abort)
        monkeypatch.setitem(engine._PLANS, FAKE_KIND, plan)
        return plan

    install.sent = sent
    return install


@pytest.fixture
def cluster():
    tenant = Tenant.objects.create(name="acme")
    return Cluster.objects.create(tenant=tenant, name="main")


def _steps(job):
    return {r["name"]: r["state"] for r in job.steps}


def test_one_active_ha_job_per_cluster_is_enforced_by_the_database(cluster):
    first = engine.create_job(cluster, "switchover", requested_by="token:abc (team ops)")
    with pytest.raises(engine.ActiveJobExists) as refused:
        engine.create_job(cluster, "switchover", requested_by="someone else")
    assert refused.value.active.id == first.id
    assert f"job {first.id} (switchover, pending)" in str(refused.value)
    cluster.refresh_from_db()
    assert cluster.last_job_id == first.id
    assert [r["state"] for r in first.steps] == ["pending"] * len(first.steps)
    Job.objects.filter(pk=first.pk).update(state="succeeded")
    second = engine.create_job(cluster, "switchover", requested_by="later")
    assert second.id != first.id


def test_claiming_is_single_flight_and_an_expired_lease_can_be_taken(cluster):
    job = engine.create_job(cluster, "switchover")
    assert engine.claim_job(job.id, "worker-1").lease_owner == "worker-1"
    assert engine.claim_job(job.id, "worker-2") is None
    # expired, but not yet by the grace a statement the first worker sent before its deadline may take
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert engine.claim_job(job.id, "worker-2") is None
    Job.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=engine.REAPER_GRACE_SECONDS + 1)
    )
    taken = engine.claim_job(job.id, "worker-2")
    assert taken.lease_owner == "worker-2" and taken.attempts == 2 and taken.state == "running"
    Job.objects.filter(pk=job.pk).update(state="succeeded")
    assert engine.claim_job(job.id, "worker-3") is None  # a redelivered task for a finished job does nothing


def test_steps_run_in_order_and_every_outcome_is_recorded(cluster, fake_plan):
    fake_plan(
        _step("check"),
        _step("nothing_to_do", s.Skipped("not configured")),
        _step("route", s.SoftFailure("proxy down")),
        _step("hook", s.Done("exited 0", {"output": "hello"})),
    )
    job = engine.create_job(cluster, FAKE_KIND, requested_by="user:alice", params={"candidate": "h:1"})
    done = engine.run_job(job.id)
    assert done.state == "succeeded" and done.finished_at and not done.lease_owner
    assert CALLS == ["check", "nothing_to_do", "route", "hook"]
    assert _steps(done) == {"check": "ok", "nothing_to_do": "skipped", "route": "failed", "hook": "ok"}
    hook = done.steps[3]
    assert hook["output"] == "hello" and hook["started_at"] <= hook["finished_at"]
    assert set(done.result["timings_ms"]) == {"check", "nothing_to_do", "route", "hook"}
    assert done.result["total_ms"] >= 0
    assert CONTEXTS[0].closed and not CONTEXTS[0].aborted
    kinds = list(Event.objects.filter(cluster=cluster).order_by("id").values_list("kind", flat=True))
    assert kinds == ["job_created", "job_started", "job_finished"]
    audit = AuditEntry.objects.get(target=f"job:{job.id}")
    assert (audit.action, audit.actor, audit.result, audit.parameters) == (
        f"job.{FAKE_KIND}",
        "user:alice",
        "succeeded",
        {"candidate": "h:1"},
    )


def test_a_soft_failure_that_fails_the_job_lets_the_plan_finish(cluster, fake_plan):
    fake_plan(_step("repoint", s.SoftFailure("db2 not repointed", fails_job=True)), _step("after"))
    done = engine.run_job(engine.create_job(cluster, FAKE_KIND).id)
    assert done.state == "failed" and CALLS == ["repoint", "after"]
    assert "db2 not repointed" in done.result["detail"]


def test_a_refusal_found_during_the_job_ends_it_refused_with_its_checks(cluster, fake_plan):
    checks = [{"name": "long_transactions", "ok": False, "detail": "open for 20s"}]

    def refuse(ctx):
        raise s.StepRefused("long-running work on the primary", checks)

    fake_plan(_step("check", refuse), _step("freeze"))
    done = engine.run_job(engine.create_job(cluster, FAKE_KIND).id)
    assert done.state == "refused"
    assert done.result["checks"] == checks
    assert _steps(done) == {"check": "failed", "freeze": "pending"}
    assert CALLS == ["check"]
    assert CONTEXTS[0].aborted == [("check", "long-running work on the primary")]
    finished = Event.objects.get(cluster=cluster, kind="job_finished")
    assert finished.severity == "warning" and finished.data["state"] == "refused"


def test_a_failed_step_stops_the_job_and_the_abort_says_what_it_undid(cluster, fake_plan):
    def fail(ctx):
        raise s.StepFailed("candidate did not catch up within 1s")

    fake_plan(_step("freeze"), _step("wait", fail), _step("promote"))
    done = engine.run_job(engine.create_job(cluster, FAKE_KIND).id)
    assert done.state == "failed"
    assert _steps(done) == {"freeze": "ok", "wait": "failed", "promote": "pending"}
    assert done.steps[1]["detail"] == "candidate did not catch up within 1s"
    assert done.result["abort"] == "undid what wait did"
    assert "wait: candidate did not catch up" in done.result["detail"]


def test_an_unexpected_error_fails_the_job_with_its_reason(cluster, fake_plan):
    def crash(ctx):
        raise ZeroDivisionError("oops")

    fake_plan(_step("boom", crash))
    done = engine.run_job(engine.create_job(cluster, FAKE_KIND).id)
    assert done.state == "failed" and "ZeroDivisionError: oops" in done.steps[0]["detail"]
    assert CONTEXTS[0].aborted and CONTEXTS[0].closed


def test_the_lease_is_renewed_while_a_long_step_runs(cluster, fake_plan, monkeypatch):
    monkeypatch.setattr(engine, "RENEW_SECONDS", 0.1)
    seen = []

    def slow(ctx):
        for _ in range(3):
            seen.append(Job.objects.get(pk=ctx.job.pk).lease_expires_at)
            time.sleep(0.3)
        return "slow done"

    fake_plan(_step("slow", slow))
    done = engine.run_job(engine.create_job(cluster, FAKE_KIND).id)
    assert done.state == "succeeded"
    assert seen[0] < seen[1] < seen[2]


def test_a_worker_that_lost_its_lease_stops_before_the_next_step(cluster, fake_plan, monkeypatch):
    monkeypatch.setattr(engine, "RENEW_SECONDS", 0.05)

    def stolen(ctx):
        Job.objects.filter(pk=ctx.job.pk).update(lease_owner="another-worker")
        time.sleep(0.3)  # the lease thread notices at its next renewal
        return "done"

    fake_plan(_step("first", stolen), _step("second"))
    job = engine.create_job(cluster, FAKE_KIND)
    assert engine.run_job(job.id) is None
    assert CALLS == ["first"]
    job.refresh_from_db()
    assert job.state == "running" and job.lease_owner == "another-worker"


def test_the_reaper_hands_over_a_dead_workers_job_and_the_next_claim_resumes_it(cluster, fake_plan):
    fake_plan(
        _step("checks"),
        _step("freeze"),
        s.StepSpec("wait", lambda ctx: CALLS.append("wait") or "waited", resume_from="freeze"),
        _step("open"),
    )
    job = engine.create_job(cluster, FAKE_KIND)
    job = engine.claim_job(job.id, "dead-worker")
    records = s.initial_records(engine.plan_for(FAKE_KIND))
    for record in records[:2]:
        record["state"] = s.OK
    records[2]["state"] = s.RUNNING
    Job.objects.filter(pk=job.pk).update(
        steps=records, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert engine.reap_jobs() == []  # within the grace: the first worker's last statement may still run
    Job.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=engine.REAPER_GRACE_SECONDS + 1)
    )
    assert engine.reap_jobs() == [job.id]
    assert fake_plan.sent == [job.id]
    assert engine.reap_jobs() == []  # handed over: not sent again until the handoff expires
    handed = Job.objects.get(pk=job.pk)
    assert handed.lease_owner == engine.HANDOFF_OWNER
    done = engine.run_job(job.id)
    assert done.state == "succeeded" and done.attempts == 2
    assert CALLS == ["freeze", "wait", "open"]  # the freeze is taken again before waiting
    kinds = set(Event.objects.filter(cluster=cluster).values_list("kind", flat=True))
    assert {"job_reaped", "job_resumed", "job_finished"} <= kinds
    resumed = Event.objects.get(cluster=cluster, kind="job_resumed")
    assert "attempt 2" in resumed.message and "at step freeze" in resumed.message


def test_a_pending_job_nobody_claimed_is_sent_again(cluster, fake_plan):
    fake_plan(_step("only"))
    job = engine.create_job(cluster, FAKE_KIND)
    assert engine.reap_jobs() == []  # just created: its task is on its way
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=30))
    assert engine.reap_jobs() == [job.id]
    assert engine.reap_jobs() == []


def test_after_too_many_attempts_the_engine_gives_up_and_aborts(cluster, fake_plan):
    fake_plan(_step("freeze"), _step("wait"))
    job = engine.create_job(cluster, FAKE_KIND)
    Job.objects.filter(pk=job.pk).update(
        state="running", attempts=engine.MAX_ATTEMPTS, lease_owner=engine.HANDOFF_OWNER
    )
    done = engine.run_job(job.id)
    assert done.state == "failed" and CALLS == []
    assert "gave up after 3 attempts at step freeze" in done.result["detail"]
    assert CONTEXTS[0].aborted and "undid what freeze did" in done.result["abort"]


def test_two_workers_racing_for_one_job_run_it_once(cluster, fake_plan):
    fake_plan(_step("only", lambda ctx: time.sleep(0.2) or "ran"))
    job = engine.create_job(cluster, FAKE_KIND)
    results = []
    threads = [threading.Thread(target=lambda: results.append(engine.run_job(job.id))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert CALLS == ["only"]
    assert sorted(r is None for r in results) == [False, True]


def test_every_change_of_a_job_is_published_to_the_cluster_group(cluster, fake_plan, monkeypatch):
    published = []
    monkeypatch.setattr(
        engine, "publish_job", lambda job: published.append((job.state, [r["state"] for r in job.steps]))
    )
    fake_plan(_step("first"), s.StepSpec("quiet", lambda ctx: "shh", quiet=True), _step("last"))
    done = engine.run_job(engine.create_job(cluster, FAKE_KIND).id)
    assert done.state == "succeeded"
    assert published[0] == ("pending", ["pending"] * 3)
    assert published[-1] == ("succeeded", ["ok"] * 3)
    running = [steps for state, steps in published if state == "running"]
    assert ["running", "pending", "pending"] in running and ["ok", "ok", "ok"] in running
    # A quiet step is published live too (the portal follows a failover's steps), only not saved.
    assert ["ok", "running", "pending"] in running and ["ok", "ok", "pending"] in running


def test_a_quiet_step_is_published_but_not_saved_until_the_next_saved_step(cluster, fake_plan, monkeypatch):
    seen_in_database = []

    def quiet(ctx):
        seen_in_database.append([r["state"] for r in Job.objects.get(pk=job.pk).steps])
        return "shh"

    fake_plan(_step("first"), s.StepSpec("quiet", quiet, quiet=True), _step("last"))
    job = engine.create_job(cluster, FAKE_KIND)
    done = engine.run_job(job.id)
    assert done.state == "succeeded"
    assert seen_in_database and seen_in_database[0][1] != "running"  # the quiet step's start: not saved


def _saved_states(job_id: int) -> list[str]:
    return [r["state"] for r in Job.objects.get(pk=job_id).steps]


def test_a_quiet_step_saved_in_background_is_saved_shortly_after_it_ends_without_waiting(cluster, fake_plan):
    """Its outcome is published at once and saved by the recorder thread within the delay, together with
    the quick steps after it; a step that runs longer finds it saved, a resumed job continues after it."""
    seen_at_start: list[list[str]] = []
    seen_later: list[list[str]] = []

    def quick(ctx):
        seen_at_start.append(_saved_states(job.pk))
        return "quick"

    def slow(ctx):
        time.sleep(engine.BACKGROUND_SAVE_DELAY_SECONDS + 0.5)
        seen_later.append(_saved_states(job.pk))
        return "slow"

    fake_plan(
        s.StepSpec("first", lambda ctx: "first", quiet=True, saved_in_background=True),
        s.StepSpec("quick", quick, quiet=True, saved_in_background=True),
        s.StepSpec("slow", slow, quiet=True),
    )
    job = engine.create_job(cluster, FAKE_KIND)
    done = engine.run_job(job.id)
    assert done.state == "succeeded"
    assert seen_at_start == [["pending", "pending", "pending"]]  # not waited for: not saved yet
    assert seen_later == [["ok", "ok", "pending"]]  # saved once, with the step after it


def test_a_job_resumes_after_its_last_quiet_step_saved_in_background(cluster, fake_plan):
    calls: list[str] = []

    def step(name):
        def run(ctx):
            calls.append(name)
            if name == "dies" and len(calls) == 2:
                time.sleep(engine.BACKGROUND_SAVE_DELAY_SECONDS + 0.5)  # "saved" lands meanwhile
                raise KeyboardInterrupt  # the worker dies here (no abort, no end)
            return name

        return s.StepSpec(name, run, quiet=True, saved_in_background=True)

    fake_plan(step("saved"), step("dies"))
    job = engine.create_job(cluster, FAKE_KIND)
    with pytest.raises(KeyboardInterrupt):
        engine.run_job(job.id)
    assert _saved_states(job.pk) == ["ok", "pending"]
    Job.objects.filter(pk=job.pk).update(lease_owner=engine.HANDOFF_OWNER)
    done = engine.run_job(job.id)
    assert done.state == "succeeded" and done.attempts == 2
    assert calls == ["saved", "dies", "dies"]  # the saved step did not run again


def test_a_worker_past_its_lease_deadline_changes_nothing_and_does_not_abort(cluster, fake_plan):
    """The lease is a fencing token kept by time: a worker stalled past its lease's deadline (measured
    locally, no query) runs no further step and no abort, even before anyone took the job over."""
    aborts = []

    def slow(ctx):
        CALLS.append("slow")
        time.sleep(0.3)
        return "done"

    def fails_late(ctx):
        CALLS.append("fails_late")
        time.sleep(0.3)
        raise s.StepFailed("a server error after the deadline")

    plan = fake_plan(s.StepSpec("fails_late", fails_late), s.StepSpec("slow", slow))
    engine._PLANS[FAKE_KIND] = s.Plan(
        FAKE_KIND,
        plan.steps,
        context=FakeContext,
        abort=lambda ctx, step, reason: aborts.append(step) or "aborted",
    )
    job = engine.create_job(cluster, FAKE_KIND)
    original = engine.LEASE_SECONDS
    engine.LEASE_SECONDS = 0.2  # the deadline passes during the first step; the database is not asked
    try:
        engine.run_job(job.id, owner="stalled-worker")
    finally:
        engine.LEASE_SECONDS = original
    assert CALLS == ["fails_late"] and aborts == []  # no abort, no further step
    job.refresh_from_db()
    assert job.state == "running" and job.lease_owner == "stalled-worker"  # the reaper hands it over later

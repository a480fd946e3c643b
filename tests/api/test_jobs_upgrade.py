"""Upgrading dbpilot with jobs in flight: a worker of the new version resumes a job an old worker started
(the old worker stopped, its lease lapsed, the reaper handed the job over). It reads the old worker's
saved state, never repeats a step the old worker finished, and does not run out of order a step the new
plan added before the point the job had reached. Fake plans on the real engine, as test_jobs_engine.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.jobs import engine
from clusters.jobs import steps as s
from clusters.jobs.state import JobState
from clusters.models import Cluster, Event, Job
from tenants.models import Tenant

pytestmark = pytest.mark.django_db(transaction=True)

FAKE_KIND = "rejoin"  # an HA kind; the fake plans stand in for its real one

# A failover's result as the first typed-state version (commit 03aa4c5) saved it after promoting and
# before opening writes: the keys of that version only (no gtid_history, old_primary_looks...), plus the
# engine's own keys.
OLD_RESULT = {
    "old_primary": "10.0.0.1:3306",
    "new_primary": "10.0.0.2:3306",
    "automatic": True,
    "confirmation": {"confirmed": True, "witnesses": ["10.0.0.3:3306"]},
    "election": {"chosen": "10.0.0.2:3306"},
    "targets": ["10.0.0.3:3306"],
    "io_stopped": ["10.0.0.2:3306", "10.0.0.3:3306"],
    "sources": {"10.0.0.3:3306": "10.0.0.1:3306"},
    "writes_rejected": True,
    "freeze_started_at": 1765000000.5,
    "gtid": {"new_primary_at_promotion": "0-1-120"},
    "promoted": True,
    "repoint_prepared": ["10.0.0.3:3306"],
    "epoch": 7,
    "timings_ms": {"elect": 3.1, "promote": 40.2},
    "checks": [],
}


class Ctx:
    def __init__(self, job, result):
        self.job = job
        self.state = JobState.from_result(result)

    def close(self):
        pass


CALLS: list[str] = []


def _step(name):
    def run(ctx):
        CALLS.append(name)
        if name == "open_writes":
            # The new worker decides from what the old one recorded.
            assert ctx.state.promoted and ctx.state.new_primary == "10.0.0.2:3306"
            ctx.state.writes_opened = True
        return f"{name} done"

    return s.StepSpec(name, run)


OLD_PLAN = ("elect", "freeze", "promote", "repoint", "open_writes")
NEW_PLAN = ("elect", "freeze", "check_new_thing", "promote", "repoint", "open_writes", "after")


@pytest.fixture
def cluster(monkeypatch):
    CALLS.clear()
    monkeypatch.setattr(engine, "enqueue_job", lambda job_id: None)
    tenant = Tenant.objects.create(name="acme")
    return Cluster.objects.create(tenant=tenant, name="main")


def _install(monkeypatch, names):
    plan = s.Plan(FAKE_KIND, tuple(_step(n) for n in names), context=Ctx, abort=None)
    monkeypatch.setitem(engine._PLANS, FAKE_KIND, plan)
    return plan


def test_a_new_worker_resumes_an_old_workers_job_without_repeating_or_reordering_steps(cluster, monkeypatch):
    # The old version runs the job up to and including the promotion, then its worker stops (warm
    # shutdown past its grace, or killed): the records and result are what the old worker saved.
    old_plan = _install(monkeypatch, OLD_PLAN)
    job = engine.create_job(cluster, FAKE_KIND)
    job = engine.claim_job(job.id, "old-worker")
    records = s.initial_records(old_plan)
    for record in records[:3]:
        record["state"] = s.OK
    records[3]["state"] = s.RUNNING  # repoint: cut short
    Job.objects.filter(pk=job.pk).update(
        steps=records,
        result=OLD_RESULT,
        lease_expires_at=timezone.now() - timedelta(seconds=engine.REAPER_GRACE_SECONDS + 1),
    )

    # The new version's plan added a step before the promotion and one at the end.
    _install(monkeypatch, NEW_PLAN)
    assert engine.reap_jobs() == [job.id]
    done = engine.run_job(job.id, owner="new-worker")

    assert done.state == "succeeded" and done.attempts == 2
    # Nothing the old worker finished runs again; the step added before the promotion is not run after it.
    assert CALLS == ["repoint", "open_writes", "after"]
    states = {r["name"]: r["state"] for r in done.steps}
    assert states == {
        "elect": "ok",
        "freeze": "ok",
        "check_new_thing": "skipped",
        "promote": "ok",
        "repoint": "ok",
        "open_writes": "ok",
        "after": "ok",
    }
    skipped = next(r for r in done.steps if r["name"] == "check_new_thing")
    assert "upgrade" in skipped["detail"]
    # The old worker's state is all still in the result, with what the new worker added.
    for key, value in OLD_RESULT.items():
        if key != "timings_ms":
            assert done.result[key] == value, key
    assert done.result["writes_opened"] is True
    resumed = Event.objects.get(cluster=cluster, kind="job_resumed")
    assert resumed.data["skipped_added"] == ["check_new_thing"]


def test_the_typed_state_reads_an_old_result_and_gives_back_exactly_its_keys():
    state = JobState.from_result(OLD_RESULT)
    assert state.promoted is True and state.epoch == 7 and state.io_stopped == OLD_RESULT["io_stopped"]
    # Fields the old version did not have read as "not set", not as decisions.
    assert state.gtid_history is None and state.old_primary_looks == [] and state.writes_opened is None
    assert state.to_result() == {k: v for k, v in OLD_RESULT.items() if k not in ("timings_ms", "checks")}


def test_an_old_worker_resuming_a_newer_workers_job_keeps_the_keys_it_does_not_know(cluster, monkeypatch):
    """A rollback mid-upgrade: the job's result has keys of a newer version; they are kept, not dropped."""
    plan = _install(monkeypatch, OLD_PLAN)
    job = engine.create_job(cluster, FAKE_KIND)
    job = engine.claim_job(job.id, "newer-worker")
    records = s.initial_records(plan)
    for record in records[:4]:
        record["state"] = s.OK
    newer = {**OLD_RESULT, "a_field_from_the_future": {"x": 1}}
    Job.objects.filter(pk=job.pk).update(
        steps=records,
        result=newer,
        lease_expires_at=timezone.now() - timedelta(seconds=engine.REAPER_GRACE_SECONDS + 1),
    )
    assert engine.reap_jobs() == [job.id]
    done = engine.run_job(job.id, owner="old-worker")
    assert done.state == "succeeded" and CALLS == ["open_writes"]
    assert done.result["a_field_from_the_future"] == {"x": 1}

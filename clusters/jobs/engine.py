"""Running jobs: create, claim, run step by step under a lease, finish, and reap jobs whose worker died.

- **One HA job per cluster** is the database's conditional unique constraint (`one_active_ha_job_per_cluster`):
  `create_job` turns its IntegrityError into `ActiveJobExists`, naming the job that holds the cluster.
- **Claim** is a compare-and-swap: a pending job, or a running one whose lease expired (or that the reaper
  handed over), becomes running under this worker's lease; exactly one claimer wins.
- **Lease**: while steps run, a background thread renews `lease_expires_at` every RENEW_SECONDS and saves
  the step records as they change (publishing each change to the cluster's group), so the steps
  themselves never wait for the control-plane database: the frozen window of a switchover costs no
  database round trip. A worker that finds its lease taken stops at the next step boundary.
- **Reaper** (`reap_jobs`, every 2 s from beat): a running HA job whose lease expired is handed over and
  sent to the `ha` queue again; the next claimer resumes it from its first unfinished step (or that step's
  `resume_from`). Steps check the servers' state first, so re-running one is harmless. After MAX_ATTEMPTS
  claims the engine gives up and runs the plan's abort, which leaves the cluster safe and says so.

Plans are found by kind in clusters.jobs.registry, which lists every kind.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta

from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from clusters import senders
from clusters.events import publish_job, record_event
from clusters.jobs import registry
from clusters.jobs import steps as s
from clusters.models import ACTIVE_JOB_STATES, HA_JOB_KINDS, Cluster, Job
from tenants.services import audit

log = logging.getLogger(__name__)

LEASE_SECONDS = 6.0
RENEW_SECONDS = 1.0
# Longer than the job sessions' statement timeout (clusters.jobs.context.EXECUTOR_READ_TIMEOUT, 10 s).
REAPER_GRACE_SECONDS = 11.0
HANDOFF_SECONDS = 5.0  # a reaped job waits this long for a worker to claim it before it is sent again
PENDING_GRACE_SECONDS = 5.0  # a pending job nobody claimed for this long is sent again
MAX_ATTEMPTS = 3
# A quiet step's outcome saved in the background waits this long for the steps after it: a burst of quick
# steps (a failover's way to open writes takes tens of milliseconds) is saved once, after it, rather than
# each save contending with the job's own writes (SQLite has one writer at a time). A worker that dies
# within it loses that save: the next one runs those steps again.
BACKGROUND_SAVE_DELAY_SECONDS = 0.25
HANDOFF_OWNER = "reaper:handoff"

_PLANS = registry.PLANS  # kind -> plan (tests add their own)


class ActiveJobExists(Exception):
    """Another HA job is pending or running on the cluster."""

    def __init__(self, active: Job | None):
        self.active = active
        what = f"job {active.id} ({active.kind}, {active.state})" if active else "another HA job"
        super().__init__(f"{what} is active on this cluster: wait for it to finish")


def plan_for(kind: str) -> s.Plan:
    return registry.plan_for(kind)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _now_iso() -> str:
    return timezone.now().isoformat()


# --- creating --------------------------------------------------------------------------------------------


def create_job(
    cluster: Cluster,
    kind: str,
    *,
    params: dict | None = None,
    requested_by: str = "",
    result: dict | None = None,
) -> Job:
    """Insert the job (pending, every step listed) and make it the cluster's last job.

    Raises ActiveJobExists when the database refuses a second active HA job on the cluster.
    """
    plan = plan_for(kind)
    try:
        with transaction.atomic():
            job = Job.objects.create(
                cluster=cluster,
                kind=kind,
                state=Job.State.PENDING,
                params=params or {},
                steps=s.initial_records(plan),
                result=result or {},
                requested_by=requested_by[:200],
            )
    except IntegrityError:
        raise ActiveJobExists(Job.objects.active_ha(cluster.id)) from None
    Cluster.objects.filter(pk=cluster.pk).update(last_job=job, updated_at=timezone.now())
    record_event(
        cluster.id,
        "job_created",
        f"{kind.capitalize()} job {job.id} requested by {requested_by or 'dbpilot'}",
        data={"job_id": job.id, "kind": kind, "params": params or {}},
    )
    publish_job(job)
    return job


def enqueue_job(job_id: int) -> None:
    """Send the job to the `ha` queue once the surrounding transaction commits (best effort: the reaper
    sends pending jobs nobody claimed again)."""

    def send() -> None:
        try:
            senders.send(senders.RUN_HA_JOB, job_id)
        except Exception:  # noqa: BLE001 - broker down: the reaper re-sends pending jobs
            log.warning("could not send job %s to the ha queue; the reaper will retry", job_id, exc_info=True)

    transaction.on_commit(send)


# --- claiming and the lease ------------------------------------------------------------------------------


def _db_now(offset_seconds: float = 0.0):
    """The control-plane database's clock (plus an offset): every lease time is written and compared on
    that one clock, never on each worker's or the reaper's host clock."""
    return ExpressionWrapper(Now() + timedelta(seconds=offset_seconds), output_field=DateTimeField())


def claim_job(job_id: int, owner: str) -> Job | None:
    """Compare-and-swap the job into `running` under `owner`'s lease; None when someone else holds it.
    A running job whose lease expired is claimable only after REAPER_GRACE_SECONDS more (see reap_jobs)."""
    now = timezone.now()
    runnable = (
        Q(state=Job.State.PENDING)
        | Q(state=Job.State.RUNNING, lease_owner=HANDOFF_OWNER)
        | Q(state=Job.State.RUNNING, lease_expires_at__isnull=True)
        | Q(state=Job.State.RUNNING, lease_expires_at__lt=_db_now(-REAPER_GRACE_SECONDS))
    )
    changed = Job.objects.filter(Q(pk=job_id) & runnable).update(
        state=Job.State.RUNNING,
        lease_owner=owner,
        lease_expires_at=_db_now(LEASE_SECONDS),
        attempts=F("attempts") + 1,
        started_at=Coalesce(F("started_at"), now),
    )
    return Job.objects.select_related("cluster").get(pk=job_id) if changed == 1 else None


class _Recorder(threading.Thread):
    """Renews the lease and, in the background, saves the latest step records and publishes every change,
    so steps never wait for the database or the channel layer."""

    def __init__(self, job: Job, owner: str, claimed_at: float | None = None):
        super().__init__(daemon=True, name=f"job-{job.id}-lease")
        self.job = job
        self.owner = owner
        self.lost = False
        # The lease's deadline on this process's monotonic clock, counted from when the claim or the last
        # successful renewal was *sent* (so it never ends later than the database's expiry). Past it the
        # worker sends nothing to a server and changes nothing (clusters.jobs.context.HaContext).
        self.deadline = (claimed_at if claimed_at is not None else time.monotonic()) + LEASE_SECONDS
        self._pending: list[tuple[int, list, dict]] = []  # every snapshot is published; the last one saved
        # (number, records, result, due): a snapshot published already, saved once due unless a newer one
        # is saved first (a later snapshot holds everything an earlier one does)
        self._deferred: tuple[int, list, dict, float] | None = None
        self._submitted = 0
        self._saved = 0
        self._stopping = False
        self._cond = threading.Condition()

    def submit(self, records: list, result: dict) -> int:
        snapshot = (copy.deepcopy(records), copy.deepcopy(result))
        with self._cond:
            self._submitted += 1
            self._pending.append((self._submitted, *snapshot))
            self._cond.notify_all()
            return self._submitted

    def defer(self, records: list, result: dict, delay: float = BACKGROUND_SAVE_DELAY_SECONDS) -> None:
        """Publish now, save within `delay` (with whatever newer snapshot has come by then)."""
        records, result = copy.deepcopy(records), copy.deepcopy(result)
        with self._cond:
            self._submitted += 1
            due = time.monotonic() + delay
            if self._deferred is not None:
                due = min(due, self._deferred[3])  # the first deferred save is never postponed further
            self._deferred = (self._submitted, records, result, due)
            self._pending.append((0, records, result))
            self._cond.notify_all()

    def announce(self, records: list, result: dict) -> None:
        """Publish a snapshot without saving it: a quiet step's progress reaches the portal live (through
        the channel layer, from this background thread) while the database is left alone."""
        snapshot = (0, copy.deepcopy(records), copy.deepcopy(result))
        with self._cond:
            self._pending.append(snapshot)
            self._cond.notify_all()

    def flush(self, records: list, result: dict, timeout: float = 10.0) -> bool:
        """Submit and wait until it is saved (a checkpoint before a change an abort must know about)."""
        number = self.submit(records, result)
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._saved < number and not self.lost and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            return self._saved >= number

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self.join()

    def run(self) -> None:
        next_renewal = time.monotonic() + RENEW_SECONDS
        try:
            while True:
                with self._cond:
                    if not self._pending and not self._stopping:
                        wake = (
                            next_renewal if self._deferred is None else min(next_renewal, self._deferred[3])
                        )
                        self._cond.wait(max(0.0, wake - time.monotonic()))
                    batch, self._pending = self._pending, []
                    stopping = self._stopping
                    to_save = [snapshot for snapshot in batch if snapshot[0]]  # 0: announced, not saved
                    deferred = self._deferred
                    if deferred is not None and to_save and to_save[-1][0] > deferred[0]:
                        self._deferred = None  # a newer snapshot is saved now: it holds the deferred one
                    elif deferred is not None and deferred[3] <= time.monotonic() and not stopping:
                        self._deferred = None
                        to_save.append(deferred[:3])  # due: saved now (published when it was deferred)
                    # (when stopping, the runner's final save holds everything)
                saved = False
                if to_save or time.monotonic() >= next_renewal:
                    saved = self._save(to_save[-1] if to_save else None)
                    next_renewal = time.monotonic() + RENEW_SECONDS
                    if to_save and saved:
                        with self._cond:
                            self._saved = max(self._saved, to_save[-1][0])
                            self._cond.notify_all()
                for snapshot in batch:  # in order; a saved one only once saved
                    if not snapshot[0] or saved:
                        self._publish(snapshot)
                if stopping:
                    break
        finally:
            with self._cond:
                self._cond.notify_all()
            connection.close()

    def lease_valid(self) -> bool:
        """The local check (no query): the lease is neither lost nor past its deadline."""
        return not self.lost and time.monotonic() < self.deadline

    def _save(self, pending: tuple[int, list, dict] | None) -> bool:
        sent = time.monotonic()
        fields: dict = {"lease_expires_at": _db_now(LEASE_SECONDS)}
        if pending is not None:
            fields["steps"], fields["result"] = pending[1], pending[2]
        try:
            changed = Job.objects.filter(pk=self.job.pk, lease_owner=self.owner).update(**fields)
        except Exception:  # noqa: BLE001 - a busy database: the lease still has LEASE_SECONDS
            log.warning("job %s: could not renew the lease", self.job.pk, exc_info=True)
            return False
        if not changed:
            with self._cond:
                self.lost = True
                self._cond.notify_all()
            return False
        self.deadline = max(self.deadline, sent + LEASE_SECONDS)
        return True

    def _publish(self, snapshot: tuple[int, list, dict]) -> None:
        view = copy.copy(self.job)
        view.state, view.steps, view.result = Job.State.RUNNING, snapshot[1], snapshot[2]
        publish_job(view)


# --- running ---------------------------------------------------------------------------------------------


def run_job(job_id: int, *, owner: str | None = None) -> Job | None:
    """Claim and run a job to its end (or until its lease is lost). Returns the job, or None when another
    worker holds it or it already finished. This is what the `ha` queue's task calls; tests call it too."""
    owner = owner or worker_identity()
    claimed_at = time.monotonic()
    job = claim_job(job_id, owner)
    if job is None:
        return None
    return _Runner(job, owner, claimed_at).run()


def _skip_steps_added_behind(stored: list | None, records: list[dict]) -> list[str]:
    """Upgrading dbpilot with jobs in flight: a job started under an older plan and resumed by a newer
    worker whose plan has a step the stored records lack, placed before a step the job already finished,
    went past that point under the old plan. Running the new step now would run it out of order (after
    the promotion, say), so it is marked skipped and says why; finished steps are never run again."""
    if not stored:
        return []
    known = {r.get("name") for r in stored}
    passed = [i for i, r in enumerate(records) if r["name"] in known and r["state"] in s.FINISHED_STATES]
    if not passed:
        return []
    added = [r["name"] for r in records[: max(passed)] if r["name"] not in known]
    for name in added:
        s.mark(
            records, name, s.SKIPPED, _now_iso(), "added by an upgrade after this job had passed this step"
        )
    return added


class _Runner:
    def __init__(self, job: Job, owner: str, claimed_at: float | None = None):
        self.job = job
        self.owner = owner
        self.plan = plan_for(job.kind)
        self.records = s.align_records(self.plan, job.steps)
        self.added_behind = _skip_steps_added_behind(job.steps, self.records)
        self.result: dict = dict(job.result or {})
        self.result.setdefault("timings_ms", {})
        self.recorder = _Recorder(job, owner, claimed_at)
        self.context = None
        self.soft_failures: list[str] = []

    def _sync_state(self) -> None:
        """The context's typed state (clusters.jobs.state.JobState) into the result about to be saved."""
        state = getattr(self.context, "state", None)
        if state is not None:
            self.result.update(state.to_result())

    def _submit(self, saved: bool = True) -> None:
        """Save (in the background) and publish the records; `saved=False` (a quiet step) only publishes."""
        self._sync_state()
        if saved:
            self.recorder.submit(self.records, self.result)
        else:
            self.recorder.announce(self.records, self.result)

    def checkpoint(self) -> None:
        """Save the records and result now and wait for it: a step calls this (ctx.checkpoint()) before a
        change that an abort or a resumed job must know about, even inside the quiet freeze."""
        self._sync_state()
        if not self.recorder.flush(self.records, self.result):
            raise s.StepFailed("could not save the job's progress to the control-plane database")

    def run(self) -> Job | None:
        job = self.job
        resumed = any(r["state"] != s.PENDING for r in self.records)
        start = s.resume_index(self.plan, self.records)
        self.recorder.start()
        kind = job.kind.capitalize()
        if resumed:
            record_event(
                job.cluster_id,
                "job_resumed",
                f"{kind} job {job.id} resumed (attempt {job.attempts}) "
                f"at step {self.plan.steps[start].name if start is not None else '-'}"
                + (
                    f"; skipped the steps added since it started: {', '.join(self.added_behind)}"
                    if self.added_behind
                    else ""
                ),
                severity="warning",
                data={
                    "job_id": job.id,
                    "kind": job.kind,
                    "attempt": job.attempts,
                    "skipped_added": self.added_behind,
                },
            )
        else:
            record_event(
                job.cluster_id,
                "job_started",
                f"{kind} job {job.id} started",
                data={"job_id": job.id, "kind": job.kind},
            )
        try:
            self.context = self.plan.context(job, self.result)
        except Exception as exc:  # noqa: BLE001 - e.g. undecryptable credentials, cluster gone
            log.exception("job %s: cannot prepare", job.id)
            return self._finish(s.JOB_FAILED, f"cannot prepare the job: {exc}")
        if hasattr(self.context, "checkpoint"):
            self.context.checkpoint = self.checkpoint
        if hasattr(self.context, "lease_valid"):
            self.context.lease_valid = self.recorder.lease_valid
        try:
            if job.attempts > MAX_ATTEMPTS:
                step = s.first_unfinished(self.records) or "-"
                undone = self._abort(step, f"gave up after {job.attempts - 1} attempts")
                return self._finish(
                    s.JOB_FAILED,
                    f"gave up after {job.attempts - 1} attempts at step {step}"
                    + (f"; {undone}" if undone else ""),
                )
            if start is not None:
                for spec in self.plan.steps[start:]:
                    if not self.recorder.lease_valid():
                        log.warning(
                            "job %s: lease lost or past its deadline; stopping before %s", job.id, spec.name
                        )
                        self.recorder.stop()
                        return None
                    outcome = self._run_step(spec, resumed and spec is self.plan.steps[start])
                    if outcome is not None:
                        return outcome
            state = s.JOB_FAILED if self.soft_failures else s.JOB_SUCCEEDED
            return self._finish(state, "; ".join(self.soft_failures) or None)
        finally:
            if self.recorder.is_alive():
                self.recorder.stop()
            try:
                if self.context is not None:
                    self.context.close()
            except Exception:  # noqa: BLE001
                log.warning("job %s: closing the context failed", job.id, exc_info=True)

    def _run_step(self, spec: s.StepSpec, first_after_resume: bool) -> Job | None:
        """Run one step; returns the finished job when the job ends here, None to go on."""
        started = time.monotonic()
        note = f"resumed (attempt {self.job.attempts})" if first_after_resume else ""
        s.mark(self.records, spec.name, s.RUNNING, _now_iso(), note)
        self._submit(saved=not spec.quiet)

        def took() -> None:
            self.result["timings_ms"][spec.name] = round((time.monotonic() - started) * 1000, 1)

        try:
            outcome = spec.run(self.context)
        except s.StepRefused as exc:
            took()
            s.mark(self.records, spec.name, s.FAILED, _now_iso(), exc.detail, **exc.extra)
            self.result["checks"] = exc.checks
            undone = self._abort(spec.name, exc.detail)
            return self._finish(s.JOB_REFUSED, exc.detail + (f"; {undone}" if undone else ""))
        except s.StepFailed as exc:
            took()
            s.mark(self.records, spec.name, s.FAILED, _now_iso(), exc.detail, **exc.extra)
            undone = self._abort(spec.name, exc.detail)
            return self._finish(
                s.JOB_FAILED, f"{spec.name}: {exc.detail}" + (f"; {undone}" if undone else "")
            )
        except Exception as exc:  # noqa: BLE001 - any error ends the job safely, with its reason
            took()
            log.exception("job %s: step %s failed", self.job.id, spec.name)
            detail = f"unexpected error: {exc.__class__.__name__}: {exc}"
            s.mark(self.records, spec.name, s.FAILED, _now_iso(), detail)
            undone = self._abort(spec.name, detail)
            return self._finish(s.JOB_FAILED, f"{spec.name}: {detail}" + (f"; {undone}" if undone else ""))
        took()
        if isinstance(outcome, s.Skipped):
            s.mark(self.records, spec.name, s.SKIPPED, _now_iso(), outcome.detail)
        elif isinstance(outcome, s.SoftFailure):
            s.mark(self.records, spec.name, s.FAILED, _now_iso(), outcome.detail, **outcome.extra)
            if outcome.fails_job:
                self.soft_failures.append(f"{spec.name}: {outcome.detail}")
        elif isinstance(outcome, s.Done):
            s.mark(self.records, spec.name, s.OK, _now_iso(), outcome.detail, **outcome.extra)
        else:
            s.mark(self.records, spec.name, s.OK, _now_iso(), outcome or "")
        if spec.quiet and spec.saved_in_background:
            self._sync_state()  # published now, saved by the recorder thread shortly: costs the step nothing
            self.recorder.defer(self.records, self.result)
        else:
            self._submit(saved=not spec.quiet)
        return None

    def _abort(self, step: str, reason: str) -> str | None:
        if self.plan.abort is None or self.context is None:
            return None
        if not self.recorder.lease_valid():
            # Another worker may hold the job by now: an abort is a change like any other.
            log.warning(
                "job %s: no abort after %s: the lease was lost or passed its deadline", self.job.id, step
            )
            self.result["abort"] = (
                "no abort: this worker's lease had passed (the worker that takes the job over decides)"
            )
            return self.result["abort"]
        try:
            undone = self.plan.abort(self.context, step, reason)
        except Exception as exc:  # noqa: BLE001 - say so: the cluster may need a person
            log.exception("job %s: abort after %s failed", self.job.id, step)
            undone = f"ABORT FAILED, check the cluster: {exc.__class__.__name__}: {exc}"
        if undone:
            self.result["abort"] = undone
        return undone

    def _finish(self, state: str, detail: str | None) -> Job | None:
        self.recorder.stop()
        if state != s.JOB_SUCCEEDED and not self.recorder.lease_valid():
            # Past the deadline a failure may only be this worker's own lateness (its statements were not
            # sent): the job stays running, the reaper hands it over and the next worker resumes it.
            log.warning(
                "job %s: not finished as %s: the lease passed its deadline (%s)", self.job.pk, state, detail
            )
            return None
        self._sync_state()
        job = self.job
        now = timezone.now()
        started_at = job.started_at or now
        self.result["total_ms"] = round((now - started_at).total_seconds() * 1000, 1)
        if detail:
            self.result["detail"] = detail
        with transaction.atomic():
            changed = Job.objects.filter(pk=job.pk, lease_owner=self.owner).update(
                state=state,
                steps=self.records,
                result=self.result,
                finished_at=now,
                lease_owner="",
                lease_expires_at=None,
            )
            if not changed:
                log.warning("job %s: lease lost before the end; another worker finishes it", job.pk)
                return None
            severity = {s.JOB_SUCCEEDED: "info", s.JOB_REFUSED: "warning"}.get(state, "error")
            message = f"{job.kind.capitalize()} job {job.pk} {state}" + (f": {detail}" if detail else "")
            record_event(
                job.cluster_id,
                "job_finished",
                message,
                severity=severity,
                data={"job_id": job.pk, "kind": job.kind, "state": state},
            )
            _audit(job, state)
        job.refresh_from_db()
        publish_job(job)
        return job


def _audit(job: Job, state: str) -> None:
    audit(
        actor=job.requested_by or "dbpilot",
        action=f"job.{job.kind}",
        tenant=job.cluster.tenant,
        target=f"job:{job.pk}",
        parameters=job.params,
        result=state,
    )


# --- preempting ------------------------------------------------------------------------------------------


def preempt_long_jobs(cluster_id: int, failover_job_id: int) -> list[int]:
    """A failover never waits for a long job (backup, rebuild, provision of a replica): any that is pending
    or running on the cluster ends now, `failed`, naming the failover. Its worker loses its lease and stops
    at its next step boundary."""
    ended = []
    for job in Job.objects.filter(cluster_id=cluster_id, state__in=ACTIVE_JOB_STATES).exclude(
        kind__in=HA_JOB_KINDS
    ):
        result = {**(job.result or {}), "detail": f"preempted by failover job {failover_job_id}"}
        changed = Job.objects.filter(pk=job.pk, state=job.state, lease_owner=job.lease_owner).update(
            state=Job.State.FAILED,
            lease_owner="",
            lease_expires_at=None,
            finished_at=timezone.now(),
            result=result,
        )
        if changed:
            ended.append(job.pk)
            record_event(
                cluster_id,
                "job_preempted",
                f"{job.kind.capitalize()} job {job.pk} ended: failover job {failover_job_id} preempts it",
                severity="warning",
                data={"job_id": job.pk, "kind": job.kind, "by": failover_job_id},
            )
    return ended


# --- reaping ---------------------------------------------------------------------------------------------


def reap_jobs() -> list[int]:
    """Hand over HA jobs whose worker died (lease expired) and re-send pending jobs nobody claimed.
    Returns the ids sent to the `ha` queue again."""
    close_old_connections()
    now = timezone.now()
    # Handed over only once the lease expired plus a grace longer than any statement the old worker may
    # have sent before its deadline (EXECUTOR_READ_TIMEOUT): by then that statement has finished.
    expired = Q(state=Job.State.RUNNING, lease_expires_at__lt=_db_now(-REAPER_GRACE_SECONDS))
    forgotten = Q(state=Job.State.PENDING, created_at__lt=now - timedelta(seconds=PENDING_GRACE_SECONDS)) & (
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    )
    sent = []
    for job in Job.objects.filter(Q(kind__in=HA_JOB_KINDS) & (expired | forgotten)).order_by("created_at"):
        changed = Job.objects.filter(
            pk=job.pk, state=job.state, lease_owner=job.lease_owner, lease_expires_at=job.lease_expires_at
        ).update(
            lease_owner=HANDOFF_OWNER if job.state == Job.State.RUNNING else "",
            lease_expires_at=_db_now(HANDOFF_SECONDS),
        )
        if not changed:
            continue
        if job.state == Job.State.RUNNING and job.lease_owner != HANDOFF_OWNER:
            record_event(
                job.cluster_id,
                "job_reaped",
                f"{job.kind.capitalize()} job {job.pk}: its worker stopped renewing the lease; resuming it",
                severity="warning",
                data={"job_id": job.pk, "kind": job.kind, "worker": job.lease_owner},
            )
        enqueue_job(job.pk)
        sent.append(job.pk)
    return sent

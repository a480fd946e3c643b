"""Failover: what a monitoring tick does about a failing primary (automatic start or refusal) and manual
failover requests. The job's steps and plan are in clusters.jobs.failover_steps, its Redis state (lags,
confirmation, incident) in clusters.hotstate, the preemption of long jobs in clusters.jobs.engine, the
request skeleton it shares with switchover in clusters.services.ha_request.

`after_tick(result, epoch=...)` is the one call monitoring makes after recording a tick. It stays cheap:
with a healthy primary it only remembers the replicas' lags (in Redis, when they change) and lets
clusters.services.fencing look at fenced servers; the database is read only once the replicas confirm
that the primary failed. The decision itself is clusters.domain.failover_plan.decide_failover (pure):

- confirmed and every guard passes: the failover job is created and started at once
  (clusters.jobs.runner: in this worker process, or on the `ha` queue);
- confirmed but guards block: one `refused` failover job per incident names every blocking guard, with
  a `failover_blocked` event;
- not confirmed: nothing (the topology's findings say why); a primary down for a while without
  confirmation gets one `failover_not_confirmed` event per incident.

A tick acting on an older epoch than the cluster's does nothing: a job changed the topology since.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction
from django.utils import timezone

from clusters import hotstate
from clusters.adapters.executor import ServerSession
from clusters.adapters.mysql import ServerError
from clusters.credentials import admin_credentials, cluster_settings, connect_options, replication_credentials
from clusters.domain import constants as c
from clusters.domain import failover_plan as plan
from clusters.domain.detection import confirm_for_topology
from clusters.domain.guards import Check, manual_failover_checks
from clusters.events import publish_job, record_event
from clusters.jobs.context import observe
from clusters.jobs.engine import ActiveJobExists, create_job, preempt_long_jobs
from clusters.jobs.failover_steps import KIND
from clusters.jobs.runner import start_job
from clusters.models import Cluster, Job
from clusters.services import fencing
from clusters.services.failover_control import failover_starts
from clusters.services.ha_request import (
    HaRequestRefused,
    active_job_check,
    create_ha_job,
    normalize_candidate,
    refuse_if_blocked,
)
from tenants.platform import platform_paused
from tenants.services import audit

log = logging.getLogger(__name__)

AUTOMATIC_ACTOR = "dbpilot (automatic failover)"
CHECK_PRIMARY_KNOWN = "primary_known"


class FailoverRefused(HaRequestRefused):
    """A manual failover refused at once."""

    default_code = "failover_refused"


class InvalidFailoverRequest(ValueError):
    """Malformed input (a candidate that is not host:port): a 400, not a refusal."""


# --- after a tick ----------------------------------------------------------------------------------------


def after_tick(result, *, epoch: int | None = None) -> None:
    """Called by monitoring after each recorded tick (never raises: a tick must go on)."""
    fresh = fencing.FreshCluster(result.cluster_id)  # read at most once, by whichever needs it first
    try:
        fencing.after_tick(result, epoch=epoch, fresh=fresh)
    except Exception:  # noqa: BLE001
        log.exception("cluster %s: fencing after the tick failed", result.cluster_id)
    try:
        _after_tick(result, epoch, fresh)
    except Exception:  # noqa: BLE001 - no automatic action when the store or broker misbehaves
        log.exception("cluster %s: the failover decision after the tick failed", result.cluster_id)


def _maybe_reopen(result, epoch: int | None, fresh: fencing.FreshCluster) -> None:
    """A primary back read-only after an incident with no failover gets its writes back when it is safe
    (plan.reopen_decision), with a `writes_reopened` event."""
    ok, why = plan.reopen_decision(
        result.topology,
        result.probes,
        result.settings,
        incident=hotstate.read_incident(result.cluster_id),
        now=time.time(),
        paused=platform_paused(),
    )
    if not ok:
        return
    cluster = fresh()
    if cluster is None or (epoch is not None and cluster.epoch != epoch) or Job.objects.active_ha(cluster.id):
        return
    address = result.topology.primary
    try:
        session = ServerSession(address, admin_credentials(cluster), connect_options(result.settings))
        try:
            session.set_read_only(False)
        finally:
            session.close()
    except ServerError as exc:
        log.warning("cluster %s: could not reopen writes on %s: %s", cluster.id, address, exc)
        return
    record_event(
        cluster.id,
        "writes_reopened",
        f"Writes reopened on {address}: {why}",
        severity="warning",
        data={"server": address, "reason": why},
    )


def _after_tick(result, epoch: int | None, fresh: fencing.FreshCluster) -> None:
    topology = result.topology
    view = topology.primary_view
    if view is not None and view.state == c.STATE_UP:
        # Redis is read back only for a replica caught reconnecting (rare), not for one stopped for good.
        previous = hotstate.last_lags(result.cluster_id) if plan.reconnecting_replicas(topology) else None
        hotstate.remember_lags(result.cluster_id, plan.lags_to_remember(topology, previous))
        probe = result.probes.get(view.address)
        if probe is not None and probe.read_only:  # the common case (writable) costs nothing more
            _maybe_reopen(result, epoch, fresh)
        return
    if not plan.primary_failing(topology):
        return
    incident = hotstate.track_incident(
        result.cluster_id, view.address, result.observed_at, result.settings.tick_seconds
    )
    last_received = getattr(result, "last_received", None)
    incident_since = getattr(result, "failing_since", None)
    confirmation = result.confirmation
    if confirmation.confirmed:
        hotstate.remember_confirmation(result.cluster_id, view.address, result.observed_at)
    if not confirmation.confirmed:
        if plan.unconfirmed_notice_due(incident, view.state, result.observed_at):
            hotstate.mark_notified(result.cluster_id, incident)
            record_event(
                result.cluster_id,
                "failover_not_confirmed",
                f"Primary {view.address} is down but the replicas do not confirm it: no failover "
                f"({confirmation.reason})",
                severity="warning",
                data={"incident": incident.key, "confirmation": confirmation.as_dict()},
            )
        return
    cluster = fresh()
    if cluster is None or (epoch is not None and cluster.epoch != epoch):
        return  # a job changed the topology since this tick began: the next tick decides
    if Job.objects.active_ha(cluster.id) is not None:
        return  # one HA job at a time; the next tick decides again
    earlier = list(
        Job.objects.filter(cluster=cluster, kind=KIND, params__incident=incident.key).values_list(
            "state", "started_at"
        )
    )
    if any(started is not None for _, started in earlier):
        return  # this incident already had its failover attempt (one per incident, whatever its end)
    settings = result.settings
    lags = hotstate.read_lags(cluster.id)
    decision = plan.decide_failover(
        topology=topology,
        probes=result.probes,
        settings=settings,
        failover_armed=cluster.failover_armed,
        platform_paused=platform_paused(),
        now=time.time(),
        # the round before this one: a decision never rests on rounds with a gap of over three ticks
        # (the failure streak starts over after one, clusters.services.monitoring._previous_failures)
        last_observation_at=getattr(result, "previous_observed_at", None) or result.observed_at,
        failovers=failover_starts(cluster.id, settings),
        has_replication_credentials=bool(replication_credentials(cluster).user),
        lags=lags,
        last_received=last_received,
        incident_since=incident_since,
        gtid_history=hotstate.read_gtid_history(cluster.id),
        confirmation=confirmation,
    )
    params = {
        "automatic": True,
        "incident": incident.key,
        "primary": view.address,
        "confirmed_at": result.observed_at,
        "epoch": cluster.epoch,
        "lags": lags,
        "last_received": last_received or {},
        "incident_since": incident_since,
        "semi_sync_at_incident": hotstate.read_semi_sync_at(cluster.id, view.address),
    }
    if decision.action == plan.START:
        _start_automatic(cluster, params, decision)
    elif decision.action == plan.REFUSE and not earlier:
        _refuse_automatic(cluster, params, decision)


def _decision_result(decision: plan.TickDecision) -> dict[str, Any]:
    # The job elects again from its own probes; the tick's winner is kept for the record.
    return {
        "checks": decision.checks_as_dicts(),
        "tick_confirmation": decision.confirmation.reason if decision.confirmation else None,
        "tick_winner": decision.election.winner if decision.election else None,
    }


def _start_automatic(cluster: Cluster, params: dict, decision: plan.TickDecision) -> Job | None:
    created: dict[str, int] = {}
    try:
        with transaction.atomic():
            # The epoch again, in the transaction that creates the job: a job that moved it first wins.
            if not Cluster.objects.filter(pk=cluster.pk, epoch=params["epoch"]).exists():
                return None
            # Registered before the job's own events, so the failover starts before they are published.
            transaction.on_commit(lambda: start_job(created["job"]))
            job = create_job(
                cluster, KIND, params=params, requested_by=AUTOMATIC_ACTOR, result=_decision_result(decision)
            )
            created["job"] = job.pk
    except ActiveJobExists:  # rolled back: nothing starts
        return None
    preempt_long_jobs(cluster.pk, job.pk)
    return job


def _refuse_automatic(cluster: Cluster, params: dict, decision: plan.TickDecision) -> Job:
    failing = decision.blocking
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.create(
            cluster=cluster,
            kind=KIND,
            state=Job.State.REFUSED,
            params=params,
            steps=[],
            result={
                **_decision_result(decision),
                "detail": decision.reason,
                "confirmation": decision.confirmation.as_dict() if decision.confirmation else None,
                "election": decision.election.as_dict() if decision.election else None,
            },
            requested_by=AUTOMATIC_ACTOR,
            finished_at=now,
        )
        record_event(
            cluster.pk,
            "failover_blocked",
            f"Automatic failover of {params['primary']} blocked by {', '.join(ch.name for ch in failing)} "
            f"(job {job.pk}): " + "; ".join(ch.detail for ch in failing),
            severity="error",
            data={"job_id": job.pk, "incident": params["incident"], "guards": [ch.name for ch in failing]},
        )
        audit(
            actor=AUTOMATIC_ACTOR,
            action="job.failover",
            tenant=cluster.tenant,
            target=f"job:{job.pk}",
            parameters={"incident": params["incident"], "primary": params["primary"]},
            result="refused",
        )
    publish_job(job)
    return job


# --- manual failover -------------------------------------------------------------------------------------


def check_failover(cluster: Cluster, candidate: str | None = None) -> tuple[list[Check], str | None]:
    """Every precondition of a manual failover (all evaluated): no other HA job, a known primary that is
    not alive (a live one: use a switchover), an electable candidate without errant transactions,
    replication credentials. Returns the checks and the primary's address. Probes the servers now."""
    settings = cluster_settings(cluster)
    checks = [active_job_check(cluster.id)]
    topology, probes = observe(cluster, settings)
    view = topology.primary_view
    checks.append(
        Check(
            CHECK_PRIMARY_KNOWN,
            view is not None,
            f"the primary is {view.address}" if view else "no primary is known: nothing to fail over from",
        )
    )
    now = time.time()
    last_received, incident_since = hotstate.read_last_received(cluster.id)
    election = plan.failover_election(
        topology,
        probes,
        settings,
        lags=hotstate.read_lags(cluster.id),
        requested=candidate,
        last_primary_state=hotstate.read_gtid_history(cluster.id),
        last_received=last_received,
        incident_since=incident_since,
    )
    checks += manual_failover_checks(
        settings=settings,
        now=now,
        last_observation_at=now,
        primary_state=view.state if view else None,
        confirmation=confirm_for_topology(
            topology, probes, settings, last_received=last_received, incident_since=incident_since
        ),
        election=election,
        age_unknown=plan.heartbeat_age_unknown(probes),
        tick_confirmed_age=hotstate.confirmed_age(cluster.id, topology.primary, now),
    )
    checks.append(plan.credentials_check(bool(replication_credentials(cluster).user)))
    return checks, topology.primary


def _failover_code(failing: list[Check]) -> str | None:
    return "primary_alive" if any(ch.name == c.GUARD_PRIMARY_DEAD for ch in failing) else None


def request_failover(cluster: Cluster, *, candidate=None, requested_by: str) -> Job:
    """Check, then create the failover job and start it (the `ha` queue). Raises FailoverRefused or
    InvalidFailoverRequest."""
    candidate = normalize_candidate(candidate, InvalidFailoverRequest)
    checks, primary = check_failover(cluster, candidate)
    refuse_if_blocked(cluster, checks, KIND, FailoverRefused, _failover_code)
    params = {"automatic": False, "primary": primary, "confirmed_at": time.time()}
    if candidate:
        params["candidate"] = candidate
    params["lags"] = hotstate.read_lags(cluster.id)
    params["semi_sync_at_incident"] = hotstate.read_semi_sync_at(cluster.id, primary)
    job = create_ha_job(cluster, KIND, checks, FailoverRefused, params=params, requested_by=requested_by)
    preempt_long_jobs(cluster.pk, job.pk)
    start_job(job.pk, from_request=True)
    return job

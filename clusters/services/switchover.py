"""Planned switchover: what is checked at once (a 409 with named checks, no job), the job, and its plan.

`check_switchover` probes the servers and runs the guards of clusters.domain.guards that can be decided
at once: another HA job active, no live primary, an invalid or unelectable candidate, replicas stopped or
lagging (when `check_replication_state`), missing replication credentials. `request_switchover` raises
`SwitchoverRefused` when one blocks, else creates the job (the database still refuses a second active HA
job) and sends it to the `ha` queue. What can only be found during the job (a long transaction on the
primary, a failing pre hook) ends the job `refused` with the same kind of checks in its result.

The job's steps and plan are in clusters.jobs.switchover_steps.
"""

from __future__ import annotations

import time

from clusters import hotstate
from clusters.credentials import cluster_settings
from clusters.domain import constants as c
from clusters.domain.guards import Check, switchover_checks
from clusters.jobs.context import observe
from clusters.jobs.engine import enqueue_job
from clusters.jobs.switchover_steps import KIND, credentials_check, run_election
from clusters.models import Cluster, Job
from clusters.services.ha_request import (
    HaRequestRefused,
    active_job_check,
    create_ha_job,
    normalize_candidate,
    refuse_if_blocked,
)

MAX_CATCHUP_TIMEOUT_SECONDS = 600.0
_IN_JOB_CHECKS = (c.CHECK_LONG_TRANSACTIONS, c.CHECK_LONG_QUERIES)


class SwitchoverRefused(HaRequestRefused):
    """A switchover refused at once."""

    default_code = "switchover_refused"


class InvalidSwitchoverRequest(ValueError):
    """Malformed input (a candidate that is not host:port, a bad timeout): a 400, not a refusal."""


def catchup_timeout(value) -> float | None:
    if value in (None, ""):
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 1 <= value <= MAX_CATCHUP_TIMEOUT_SECONDS
    ):
        raise InvalidSwitchoverRequest(
            f"catchup_timeout_seconds must be a number from 1 to {MAX_CATCHUP_TIMEOUT_SECONDS:g}"
        )
    return float(value)


def check_switchover(cluster: Cluster, candidate: str | None = None) -> list[Check]:
    """Every precondition that can be decided at once, each named (all evaluated, none short-circuited)."""
    settings = cluster_settings(cluster)
    checks = [active_job_check(cluster.id)]
    topology, probes = observe(cluster, settings)
    election = run_election(topology, probes, settings, candidate)
    _, failing_since = hotstate.read_last_received(cluster.id)  # since when the primary fails, if it does
    checks += [
        check
        for check in switchover_checks(
            topology, probes, settings, election, failing_since=failing_since, now=time.time()
        )
        if check.name not in _IN_JOB_CHECKS
    ]
    checks.append(credentials_check(cluster))
    return checks


def request_switchover(
    cluster: Cluster, *, candidate=None, requested_by: str, catchup_timeout_seconds=None, enqueue: bool = True
) -> Job:
    """Check, then create the switchover job and send it to the `ha` queue (`enqueue=False`: the caller
    runs it, e.g. `clusters.jobs.engine.run_job` in tests). Raises SwitchoverRefused or
    InvalidSwitchoverRequest."""
    candidate = normalize_candidate(candidate, InvalidSwitchoverRequest)
    timeout = catchup_timeout(catchup_timeout_seconds)
    checks = check_switchover(cluster, candidate)
    refuse_if_blocked(cluster, checks, KIND, SwitchoverRefused)
    params: dict = {}
    if candidate:
        params["candidate"] = candidate
    if timeout:
        params["catchup_timeout_seconds"] = timeout
    job = create_ha_job(cluster, KIND, checks, SwitchoverRefused, params=params, requested_by=requested_by)
    if enqueue:
        enqueue_job(job.id)
    return job

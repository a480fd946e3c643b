"""What switchover and failover requests share: the candidate's parsing, the active-job check, the refusal
(a 409 with the checks, raised before any job exists) and the job's creation under the database's
one-HA-job rule."""

from __future__ import annotations

from collections.abc import Callable

from clusters.domain.addresses import AddressError, format_address, parse_address
from clusters.domain.guards import Check, blocking
from clusters.jobs.engine import ActiveJobExists, create_job
from clusters.models import Cluster, Job

CHECK_NO_ACTIVE_JOB = "no_active_ha_job"


class HaRequestRefused(Exception):
    """Refused before any job exists; `checks` are dicts {"name", "ok", "detail"}."""

    default_code = "refused"

    def __init__(
        self, detail: str, checks: list[dict], *, code: str | None = None, active_job: Job | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.checks = checks
        self.code = code or self.default_code
        self.active_job = active_job


def normalize_candidate(candidate, invalid: type[ValueError]) -> str | None:
    """The requested candidate as a canonical "host:port", None when none is asked; `invalid` (a 400) when
    it is not an address."""
    if candidate in (None, ""):
        return None
    if not isinstance(candidate, str):
        raise invalid('candidate must be a "host:port" string')
    try:
        parsed = parse_address(candidate)
    except AddressError as exc:
        raise invalid(f"candidate: {exc}") from None
    return format_address(parsed.host, parsed.port)


def active_job_check(cluster_id: int) -> Check:
    active = Job.objects.active_ha(cluster_id)
    return Check(
        CHECK_NO_ACTIVE_JOB,
        active is None,
        "no other HA job is active"
        if active is None
        else f"job {active.id} ({active.kind}, {active.state}) is active on this cluster: wait for it to finish",
    )


def refuse_if_blocked(
    cluster: Cluster,
    checks: list[Check],
    kind: str,
    refused: type[HaRequestRefused],
    code_for: Callable[[list[Check]], str | None] = lambda failing: None,
) -> None:
    """Raise `refused` naming every blocking check (code `ha_job_active` when another job holds the
    cluster, else `code_for(failing)` or the refusal's own code)."""
    failing = blocking(checks)
    if not failing:
        return
    active = (
        Job.objects.active_ha(cluster.id) if any(ch.name == CHECK_NO_ACTIVE_JOB for ch in failing) else None
    )
    code = "ha_job_active" if active else (code_for(failing) or refused.default_code)
    raise refused(
        f"{kind} refused: " + "; ".join(f"{ch.name}: {ch.detail}" for ch in failing),
        [ch.as_dict() for ch in checks],
        code=code,
        active_job=active,
    )


def create_ha_job(
    cluster: Cluster,
    kind: str,
    checks: list[Check],
    refused: type[HaRequestRefused],
    *,
    params: dict,
    requested_by: str,
) -> Job:
    """Create the job with the request's checks in its result; the database's refusal of a second active
    HA job (a request that raced another) is the same 409."""
    try:
        return create_job(
            cluster,
            kind,
            params=params,
            requested_by=requested_by,
            result={"checks": [ch.as_dict() for ch in checks]},
        )
    except ActiveJobExists as exc:
        check = Check(CHECK_NO_ACTIVE_JOB, False, str(exc))
        raise refused(
            f"{kind} refused: {exc}", [check.as_dict()], code="ha_job_active", active_job=exc.active
        ) from None

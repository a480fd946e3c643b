"""The `switchover` job: its steps, its abort and its plan (requests and checks: clusters.services.switchover).

The plan is the seed's workflow, every step recorded (docs/jobs.md): verify settings, check replication,
start stopped replicas (check_replication_state off), check long transactions, elect, pre hook, routes
(primary leaving), reject writes, wait for the candidate, promote, repoint the others and the old
primary, open writes, release the old primary's read lock, routes (new primary), post hook, restore the
old primary, replicas read-only. Repointing comes before opening writes so the new primary's first
commits find a semi-sync replica; the old primary's read lock is held until the new primary is writable.
"""

from __future__ import annotations

from clusters.adapters.mysql import ServerError
from clusters.credentials import replication_credentials
from clusters.domain import constants as c
from clusters.domain import probe as probe_outcomes
from clusters.domain.election import Election, candidates_from_topology, elect
from clusters.domain.guards import (
    Check,
    blocking,
    candidate_check,
    errant_check,
    long_running_checks,
    switchover_checks,
)
from clusters.domain.probe import ProbeResult
from clusters.domain.repoint_plan import switchover_targets
from clusters.domain.settings import ClusterSettings
from clusters.domain.topology import Topology
from clusters.jobs import ha_after, ha_freeze, ha_promote
from clusters.jobs.context import HaContext
from clusters.jobs.steps import Done, Plan, Skipped, StepRefused, StepSpec
from clusters.models import Cluster
from clusters.routes import PRIMARY_CHANGED, PRIMARY_LEAVING, announce_new_primary

KIND = "switchover"
CATCHUP_TIMEOUT_SECONDS = 30.0
CHECK_REPLICATION_CREDENTIALS = "replication_credentials"


def run_election(
    topology: Topology, probes: dict, settings: ClusterSettings, requested: str | None
) -> Election:
    return elect(candidates_from_topology(topology, probes), settings, requested=requested)


def credentials_check(cluster: Cluster) -> Check:
    ok = bool(replication_credentials(cluster).user)
    return Check(
        CHECK_REPLICATION_CREDENTIALS,
        ok,
        "replication credentials are set"
        if ok
        else "no replication credentials: PATCH the cluster's replication_credentials so replicas can be repointed",
    )


# --- the plan's own steps --------------------------------------------------------------------------------


def _refuse_if_blocked(checks: list[Check], what: str) -> str:
    failing = blocking(checks)
    if failing:
        raise StepRefused(
            f"{what}: " + "; ".join(f"{ch.name}: {ch.detail}" for ch in failing),
            [ch.as_dict() for ch in checks],
        )
    return "; ".join(ch.detail for ch in checks)


def _elect_now(ctx: HaContext) -> Election:
    """The job's one election, made again only when the servers were probed again since (after
    start_stopped_replicas started threads); the request's election is not reused: time passed."""
    topology = ctx.topology or ctx.probe()
    if ctx.election is None or ctx.elected_from is not topology:
        ctx.election = run_election(topology, ctx.probes, ctx.settings, ctx.params.get("candidate"))
        ctx.elected_from = topology
    return ctx.election


def _settings_checks(ctx: HaContext, election: Election) -> list[Check]:
    names = (c.CHECK_PRIMARY_UP, c.CHECK_REPLICATION_SETTINGS)
    checks = [
        ch for ch in switchover_checks(ctx.topology, ctx.probes, ctx.settings, election) if ch.name in names
    ]
    return checks + [credentials_check(ctx.cluster)]


def verify_replication_settings(ctx: HaContext) -> str:
    """A live primary; GTID, log_bin, log_slave_updates and ROW on the (preliminary) candidate."""
    topology = ctx.probe()
    election = _elect_now(ctx)
    detail = _refuse_if_blocked(_settings_checks(ctx, election), "replication settings")
    ctx.state.old_primary = topology.primary
    if ctx.state.routes_ok is None:
        ctx.state.routes_ok = True
    return detail


def check_replication(ctx: HaContext):
    if not ctx.settings.check_replication_state:
        return Skipped("check_replication_state is off: stopped replicas are started next")
    topology = ctx.topology or ctx.probe()
    election = _elect_now(ctx)
    names = (c.CHECK_REPLICATION_STATE, c.CHECK_REPLICA_LAG)
    checks = [
        ch for ch in switchover_checks(topology, ctx.probes, ctx.settings, election) if ch.name in names
    ]
    return _refuse_if_blocked(checks, "replication")


def start_stopped(ctx: HaContext):
    if ctx.settings.check_replication_state:
        return Skipped("check_replication_state is on: replication was verified running")
    outcome = ha_freeze.start_stopped_replicas(ctx, ctx.state.old_primary)
    ctx.probe()  # the election must see the threads it started
    return outcome


def check_long_transactions(ctx: HaContext) -> str:
    """A transaction or write older than switchover_wait_trx_seconds on the primary refuses the job.
    Measured on the job's own session: client sessions only (not dbpilot's, not replication), and not
    transactions InnoDB still lists while they commit."""
    old = ctx.state.old_primary
    try:
        measured = ctx.session(old).long_running(ctx.admin.user)
    except ServerError as exc:
        raise StepRefused(
            f"cannot check the primary's transactions: {exc}",
            [{"name": c.CHECK_LONG_TRANSACTIONS, "ok": False, "detail": str(exc)}],
        ) from exc
    primary = ProbeResult(address=old, outcome=probe_outcomes.OK, **measured)
    return _refuse_if_blocked(long_running_checks(primary, ctx.settings), "long-running work on the primary")


def elect_candidate(ctx: HaContext) -> Done:
    """The requested candidate if electable, else the most up-to-date electable replica (decision table
    in the result); then open every session the frozen window needs."""
    election = _elect_now(ctx)
    ctx.state.election = election.as_dict()
    checks = [candidate_check(election, c.CHECK_CANDIDATE), errant_check(election)]
    if election.winner is not None:
        checks += [ch for ch in _settings_checks(ctx, election) if ch.name == c.CHECK_REPLICATION_SETTINGS]
    _refuse_if_blocked(checks, "candidate")
    old, new = ctx.state.old_primary, election.winner
    ctx.state.new_primary = new
    wanted = [(old, ha_promote.FREEZE_SESSION), (old, "main"), (new, "main")]
    others = [a for a in ctx.addresses if a not in (old, new)]
    failed = ctx.open_sessions(wanted + [(a, "main") for a in others])
    essential = {key: error for key, error in failed.items() if key[0] in (old, new)}
    if essential:
        raise StepRefused(
            "cannot connect: " + "; ".join(f"{k[0]}: {e}" for k, e in essential.items()),
            [{"name": "connect", "ok": False, "detail": e} for e in essential.values()],
        )
    unreachable = sorted({key[0] for key in failed})
    ctx.state.unreachable = unreachable
    note = f"; not reachable, not repointed: {', '.join(unreachable)}" if unreachable else ""
    return Done(f"{new} ({election.reason}){note}")


def wait_candidate_catchup(ctx: HaContext):
    timeout = ha_freeze.seconds(ctx.params.get("catchup_timeout_seconds"), CATCHUP_TIMEOUT_SECONDS)
    final = ctx.state.gtid.get("old_primary_final")
    return ha_freeze.wait_for_position(ctx, ctx.state.new_primary, final, timeout)


def _targets(ctx: HaContext) -> list[str]:
    """The servers that follow the new primary: all others that were reachable when it was elected."""
    return switchover_targets(ctx.addresses, ctx.state.new_primary, ctx.state.unreachable)


def reject_writes(ctx: HaContext):
    old = ctx.state.old_primary
    followers = [a for a in _targets(ctx) if a != old]
    return ha_freeze.reject_writes(ctx, old, ctx.state.new_primary, followers)


def promote_candidate(ctx: HaContext):
    return ha_promote.promote(ctx, ctx.state.new_primary, _targets(ctx), demoted=ctx.state.old_primary)


def repoint_replicas(ctx: HaContext):
    left_out = {a: "not reachable" for a in ctx.state.unreachable}
    return ha_promote.repoint(
        ctx, ctx.state.new_primary, _targets(ctx), demoted=ctx.state.old_primary, left_out=left_out
    )


def abort_switchover(ctx: HaContext, step: str, reason: str) -> str | None:
    """Leave the cluster safe after a failed or refused step. Until the new primary took writes, the old
    one gets them back and the others follow it again (unless some other server is writable); once the
    new primary is writable, the old primary is never reopened."""
    old = ctx.state.old_primary
    if ctx.state.writes_opened:
        return None
    notes = []
    if ctx.state.writes_rejected and old:
        notes.append(ha_freeze.restore_primary(ctx, old))
    if ctx.state.routes_told_leaving and old and not ctx.state.writes_rejected:
        try:
            results = announce_new_primary(
                ctx.cluster,
                old,
                replicas=[a for a in ctx.addresses if a != old],
                epoch=ctx.cluster.epoch,
                job_id=ctx.job_id,
            )
        except Exception as exc:  # noqa: BLE001 - the writes are back; the routes are stale and say so
            ctx.state.routes_ok = False
            notes.append(f"routes could not be pointed back at {old}: {exc}")
        else:
            ctx.state.routes["restored"] = [r.as_dict() for r in results]
            if results:
                ok = all(r.ok for r in results)
                ctx.state.routes_ok = ok
                notes.append(f"routes pointed back at {old}" + ("" if ok else " (some failed)"))
    return "; ".join(notes) or None


PLAN = Plan(
    kind=KIND,
    steps=(
        StepSpec("verify_replication_settings", verify_replication_settings),
        StepSpec("check_replication", check_replication),
        StepSpec("start_stopped_replicas", start_stopped),
        StepSpec("check_long_transactions", check_long_transactions),
        StepSpec("elect_candidate", elect_candidate),
        StepSpec(
            "pre_failover_hook",
            lambda ctx: ha_after.hook_step(ctx, "pre_failover", KIND, "pre", refuse_on_failure=True),
        ),
        StepSpec("routes_primary_leaving", lambda ctx: ha_after.routes_step(ctx, PRIMARY_LEAVING)),
        # The write freeze: quiet steps, recorded together once writes are open again.
        StepSpec("reject_writes", reject_writes, quiet=True),
        StepSpec("wait_candidate_catchup", wait_candidate_catchup, resume_from="reject_writes", quiet=True),
        StepSpec("promote_candidate", promote_candidate, resume_from="reject_writes", quiet=True),
        StepSpec("repoint_replicas", repoint_replicas, quiet=True),
        StepSpec(
            "open_writes",
            lambda ctx: ha_promote.open_writes(ctx, ctx.state.new_primary, ctx.state.old_primary),
            quiet=True,
        ),
        StepSpec(
            "release_old_primary",
            lambda ctx: ha_freeze.release_demoted(ctx, ctx.state.old_primary, ctx.state.new_primary),
        ),
        StepSpec("routes_new_primary", lambda ctx: ha_after.routes_step(ctx, PRIMARY_CHANGED)),
        StepSpec(
            "post_failover_hook",
            lambda ctx: ha_after.hook_step(ctx, "post_failover", KIND, "post", refuse_on_failure=False),
        ),
        StepSpec(
            "restore_old_primary", lambda ctx: ha_freeze.restore_max_connections(ctx, ctx.state.old_primary)
        ),
        StepSpec(
            "replicas_read_only",
            lambda ctx: ha_after.replicas_read_only(
                ctx, [a for a in ctx.addresses if a != ctx.state.new_primary]
            ),
        ),
        StepSpec(
            "verify_replication",
            lambda ctx: ha_after.verify_replication(ctx, ctx.state.new_primary, _targets(ctx)),
        ),
    ),
    context=HaContext,
    abort=abort_switchover,
)

"""The steps of the rejoin job: a fenced server (an old primary a failover left behind) becomes a replica of
the current primary. A GTID rejoin is tried first; a server holding transactions the primary lacks is
repaired by the cluster's `rejoin_method` fallbacks in order (clusters.domain.rejoin_plan): flashback,
reseed (a rebuild job), or quarantined when none is left.

    check_server       fresh probes: it answers, the primary is up, it is read-only (fenced again if not);
                       its GTIDs a subset of the primary's: GTID rejoin; else the first fallback (or
                       quarantined: refused)
    flashback_inspect  its binlog events and both binlog states -> the flashback plan (discarded GTIDs, fork
                       point); refused (DDL, purged binlogs, too many events, not ROW/FULL...): next method
    flashback_save     the discarded transactions' events as SQL, and the undo SQL, saved as job artifacts
                       before anything changes; an event names their GTIDs
    flashback_apply    the undo applied with sql_log_bin=0 (no new GTIDs); the binlog state set without the
                       discarded GTIDs (RESET MASTER + gtid_binlog_state: strict mode would refuse the
                       primary's same sequence numbers); gtid_slave_pos = the fork point
    reseed             hands the server to a rebuild job (clusters/jobs/rebuild_steps.py)
    repoint            STOP SLAVE; gtid_slave_pos = @@gtid_binlog_pos (or the fork point); semi-sync slave
                       side; CHANGE MASTER to the primary by GTID (1 s retry and heartbeat); START SLAVE
    verify             IO and SQL running from the primary, then 3 consecutive good samples 0.5 s apart
                       (threads running, no error, lag bounded, position advancing or at the primary's;
                       clusters.domain.rejoin_verify); a stopped thread fails the job, the server stays fenced
    unfence            read_only confirmed, the fence and quarantine flags cleared, the epoch bumped

Params: {"server": "host:port", "method": optional explicit method or list}.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NoReturn

from django.db.models import F
from django.utils import timezone

from clusters.adapters import binlog_tools
from clusters.adapters.mysql import POOL, ServerError
from clusters.domain import failover_plan as plan
from clusters.domain import rejoin_plan as rp
from clusters.domain import rejoin_verify as rv
from clusters.domain.repoint_plan import by_gtid, points_at, replicating
from clusters.events import record_event
from clusters.jobs import ha_after
from clusters.jobs.context import HaContext
from clusters.jobs.steps import (
    Done,
    Plan,
    Skipped,
    SoftFailure,
    StepFailed,
    StepOutcome,
    StepRefused,
    StepSpec,
)
from clusters.models import Cluster, Job, JobArtifact, Server

# (cluster, server, requested_by) -> the rebuild job started for it; registered by clusters.services.repair
# (a step never imports a service). Reseed hands the server over to that long job, so this HA job ends
# at once and never holds off a failover for the length of a clone.
REBUILD_STARTER: Callable[[Cluster, Server, str], Job] | None = None

VERIFY_TIMEOUT_SECONDS = 10.0  # for the consecutive good samples, after both threads were seen running
DISCARDED_ARTIFACT = "discarded-transactions.sql"
FLASHBACK_ARTIFACT = "flashback-undo.sql"


def _server(ctx: HaContext) -> str:
    return ctx.params["server"]


def check_server(ctx: HaContext) -> StepOutcome:
    address = _server(ctx)
    POOL.discard_address(address)  # it restarted: connections pooled before that are dead
    topology = ctx.probe()
    probe = ctx.probes.get(address)
    primary = topology.primary_view
    if probe is None or not probe.reachable:
        raise StepRefused(
            f"{address} does not answer", [{"name": "server_up", "ok": False, "detail": "not reachable"}]
        )
    if primary is None or primary.address == address or primary.state != "up":
        detail = f"no live primary to rejoin (primary {primary.address if primary else 'unknown'})"
        raise StepRefused(detail, [{"name": "primary_up", "ok": False, "detail": detail}])
    ctx.state.primary = primary.address
    ctx.state.new_primary = primary.address
    session = ctx.session(address)
    notes = []
    if not session.read_only():
        session.set_read_only(True)
        notes.append("made read-only")
    extra = plan.extra_transactions(probe, ctx.probes[primary.address])
    if extra is None:
        detail = "its GTIDs cannot be compared with the primary's"
        raise StepRefused(detail, [{"name": plan.CHECK_NO_EXTRA_GTIDS, "ok": False, "detail": detail}])
    if ctx.state.rejoin.get("method") in (rp.FLASHBACK, rp.RESEED):
        return Done(f"resumed: {ctx.state.rejoin['method']} chosen before")  # a flashback may be half done
    chain = rp.rejoin_chain(
        ctx.settings.rejoin_method,
        provisioned=ctx.cluster.origin == Cluster.Origin.PROVISIONED,
        requested=ctx.params.get("method"),
    )
    ctx.state.rejoin = {"chain": list(chain), "tried": [], "extra_gtids": list(extra)}
    if extra:
        method = rp.next_method(chain, [])
        if method is None:
            _quarantine_and_refuse(ctx, extra, f"rejoin_method {'/'.join(chain)} has no repair to try")
        ctx.state.rejoin["method"] = method
        notes.append(f"holds transactions {primary.address} lacks ({', '.join(extra)}): trying {method}")
        return Done("; ".join(notes))
    ctx.state.rejoin["method"] = rp.GTID
    ctx.state.server_gtid_binlog_pos = probe.gtid_binlog_pos or probe.gtid_executed
    notes.append(f"its GTIDs are all on {primary.address}")
    return Done("; ".join(notes))


def _quarantine_and_refuse(
    ctx: HaContext, extra: list[str], why: str, checks: list | None = None
) -> NoReturn:
    address = _server(ctx)
    quarantine(ctx.cluster, ctx.server(address), extra, ctx.state.primary)
    detail = f"{address} holds transactions {ctx.state.primary} lacks: {', '.join(extra)}; {why}; quarantined"
    raise StepRefused(
        detail, [*(checks or []), {"name": plan.CHECK_NO_EXTRA_GTIDS, "ok": False, "detail": detail}]
    )


def _method(ctx: HaContext) -> str:
    return ctx.state.rejoin.get("method", rp.GTID)


def _fall_through(ctx: HaContext, method: str, why: str, checks: list | None = None) -> StepOutcome:
    """`method` cannot repair the server: the next one of the chain, or quarantine (refused)."""
    tried = [*ctx.state.rejoin.get("tried", []), method]
    ctx.state.rejoin["tried"] = tried
    following = rp.next_method(ctx.state.rejoin.get("chain", []), tried)
    if following is None:
        _quarantine_and_refuse(ctx, ctx.state.rejoin.get("extra_gtids", []), f"{method}: {why}", checks)
    ctx.state.rejoin["method"] = following
    return SoftFailure(f"{method} impossible: {why}; trying {following}")


# --- flashback -------------------------------------------------------------------------------------------


def _endpoint(ctx: HaContext, credentials) -> binlog_tools.Endpoint:
    host, port = ctx.host_port(_server(ctx))
    return binlog_tools.Endpoint(host, port, credentials)


# Reading more binlog events than this to find the fork point: the inspection itself would be the risk
# (every event is held in memory); a rebuild is the better answer.
MAX_INSPECTED_EVENTS = 2_000_000


class BinlogTooLarge(Exception):
    pass


def _binlog_events(session, primary_state: str) -> list[rp.BinlogEvent]:
    """The server's binlog events, newest files first until one starts from a state the primary holds
    entirely (the fork point is then in the files read), returned oldest first; BinlogTooLarge past
    MAX_INSPECTED_EVENTS."""
    from clusters.domain.gtid import MariadbBinlogState

    theirs = MariadbBinlogState.parse(primary_state)
    files = [row["Log_name"] for row in session.query("SHOW BINARY LOGS")]
    read: list[list[rp.BinlogEvent]] = []
    for log in reversed(files):
        events = [rp.BinlogEvent.from_row(r) for r in session.query(f"SHOW BINLOG EVENTS IN '{log}'")]
        read.append(events)
        if sum(len(e) for e in read) > MAX_INSPECTED_EVENTS:
            raise BinlogTooLarge(
                f"more than {MAX_INSPECTED_EVENTS} binlog events to read back to the fork point"
            )
        start = next((e.info.strip().strip("[]") for e in events if e.event_type == "Gtid_list"), None)
        if start is not None and theirs.contains(MariadbBinlogState.parse(start)):
            break
    return [e for events in reversed(read) for e in events]


def _has_binlog_replay(session) -> bool:
    grants = " ".join(str(v) for row in session.query("SHOW GRANTS") for v in row.values()).upper()
    return any(p in grants for p in ("BINLOG REPLAY", "SUPER", "ALL PRIVILEGES"))


def flashback_inspect(ctx: HaContext) -> StepOutcome:
    if _method(ctx) != rp.FLASHBACK:
        return Skipped(f"method {_method(ctx)}")
    if ctx.state.rejoin.get("flashback", {}).get("refusals") == []:
        return Done("resumed: planned before")
    address, primary = _server(ctx), ctx.state.primary
    session, primary_session = ctx.session(address), ctx.session(primary)
    own = session.query(
        "SELECT @@gtid_binlog_state AS state, @@binlog_format AS fmt, @@binlog_row_image AS image"
    )[0]
    primary_state = primary_session.query("SELECT @@gtid_binlog_state AS state")[0]["state"]
    checks = []
    if ctx.replication is None:
        checks.append(
            {"name": "replication_credentials", "ok": False, "detail": "none registered: binlogs unreadable"}
        )
    if not _has_binlog_replay(session):
        checks.append(
            {
                "name": "binlog_replay_privilege",
                "ok": False,
                "detail": f"dbpilot's user on {address} lacks BINLOG REPLAY (needed to apply the undo)",
            }
        )
    if checks:
        return _fall_through(ctx, rp.FLASHBACK, "; ".join(c["detail"] for c in checks), checks)
    try:
        events = _binlog_events(session, primary_state)
    except BinlogTooLarge as exc:
        check = {"name": "binlog_inspectable", "ok": False, "detail": str(exc)}
        return _fall_through(ctx, rp.FLASHBACK, str(exc), [check])
    decided = rp.flashback_plan(
        events,
        own["state"],
        primary_state,
        binlog_format=own["fmt"],
        binlog_row_image=own["image"],
    )
    ctx.state.rejoin["flashback"] = decided.as_dict()
    if not decided.possible:
        why = "; ".join(r["detail"] for r in decided.refusals)
        return _fall_through(ctx, rp.FLASHBACK, why, list(decided.refusals))
    return Done(
        f"{len(decided.discarded)} transaction(s) to roll back ({', '.join(decided.discarded)}), "
        f"{decided.row_events} row event(s), from {decided.start_log}:{decided.start_pos}; "
        f"fork point {decided.fork_point}"
    )


def _save_artifact(ctx: HaContext, name: str, content: str, description: str) -> None:
    JobArtifact.objects.update_or_create(
        job_id=ctx.job_id,
        name=name,
        defaults={"content": content, "content_type": "application/sql", "description": description},
    )


def flashback_save(ctx: HaContext) -> StepOutcome:
    if _method(ctx) != rp.FLASHBACK:
        return Skipped(f"method {_method(ctx)}")
    decided = ctx.state.rejoin["flashback"]
    if ctx.state.rejoin.get("artifacts"):
        return Done("resumed: saved before")
    log, _, pos = decided["start"].rpartition(":")
    endpoint = _endpoint(ctx, ctx.replication)
    try:
        readable = binlog_tools.read_binlog(endpoint, log, int(pos), flashback=False)
        undo = binlog_tools.read_binlog(endpoint, log, int(pos), flashback=True)
    except (binlog_tools.BinlogToolError, OSError) as exc:
        return _fall_through(ctx, rp.FLASHBACK, f"reading its binlogs failed: {exc}")
    gtids = decided["discarded"]
    _save_artifact(
        ctx, DISCARDED_ARTIFACT, readable, f"the transactions rolled back by flashback: {', '.join(gtids)}"
    )
    _save_artifact(ctx, FLASHBACK_ARTIFACT, undo, "the undo statements applied (mariadb-binlog --flashback)")
    ctx.state.rejoin["artifacts"] = [DISCARDED_ARTIFACT, FLASHBACK_ARTIFACT]
    address = _server(ctx)
    record_event(
        ctx.cluster.pk,
        "flashback_discarding",
        f"Flashback of {address}: discarding {len(gtids)} transaction(s) the primary {ctx.state.primary} "
        f"never received: {', '.join(gtids)}. Their SQL is saved in job {ctx.job_id} "
        f"(GET /api/v1/jobs/{ctx.job_id}/artifacts/).",
        severity="warning",
        data={
            "server": address,
            "gtids": gtids,
            "job_id": ctx.job_id,
            "artifacts": ctx.state.rejoin["artifacts"],
        },
    )
    ctx.checkpoint()  # the record exists before anything is rolled back
    return Done(f"saved {DISCARDED_ARTIFACT} ({len(readable)} bytes) and {FLASHBACK_ARTIFACT}")


def flashback_apply(ctx: HaContext) -> StepOutcome:
    if _method(ctx) != rp.FLASHBACK:
        return Skipped(f"method {_method(ctx)}")
    decided = ctx.state.rejoin["flashback"]
    address = _server(ctx)
    session = ctx.session(address)
    state = session.query("SELECT @@gtid_binlog_state AS state")[0]["state"]
    if state == decided["binlog_state"] and ctx.state.rejoin.get("applied"):
        return Done("resumed: applied before")
    if session.replication_status() is not None:
        session.stop_replication()
    if not ctx.state.rejoin.get("applied"):
        undo = JobArtifact.objects.get(job_id=ctx.job_id, name=FLASHBACK_ARTIFACT).content
        try:
            binlog_tools.apply_sql(_endpoint(ctx, ctx.admin), undo)
        except (binlog_tools.BinlogToolError, OSError) as exc:
            # Part of the undo may have run: its data is no longer trustworthy; only a rebuild helps now.
            ctx.state.rejoin["chain"] = [m for m in ctx.state.rejoin.get("chain", []) if m != rp.GTID]
            return _fall_through(ctx, rp.FLASHBACK, f"applying the undo failed: {exc}")
        ctx.state.rejoin["applied"] = True
        ctx.checkpoint()
    try:
        session.execute("RESET MASTER")
        session.query("SET GLOBAL gtid_binlog_state = %s", (decided["binlog_state"],))
        session.query("SET GLOBAL gtid_slave_pos = %s", (decided["fork_point"],))
    except ServerError as exc:
        raise StepFailed(f"setting {address}'s GTID state to the fork point: {exc}") from None
    ctx.state.server_gtid_binlog_pos = decided["fork_point"]
    record_event(
        ctx.cluster.pk,
        "server_flashed_back",
        f"{address} rolled back {', '.join(decided['discarded'])} by flashback; it resumes at the fork point "
        f"{decided['fork_point']}",
        severity="warning",
        data={
            "server": address,
            "gtids": decided["discarded"],
            "fork_point": decided["fork_point"],
            "job_id": ctx.job_id,
        },
    )
    return Done(
        f"rolled back {len(decided['discarded'])} transaction(s) with sql_log_bin=0; "
        f"gtid_binlog_state {decided['binlog_state']}, gtid_slave_pos {decided['fork_point']}"
    )


def reseed(ctx: HaContext) -> StepOutcome:
    if _method(ctx) != rp.RESEED:
        return Skipped(f"method {_method(ctx)}")
    if ctx.state.rejoin.get("rebuild_job"):
        return Done(f"resumed: rebuild job {ctx.state.rejoin['rebuild_job']} started before")
    if REBUILD_STARTER is None:
        raise StepFailed("no rebuild starter registered: import clusters.services.repair first")
    server = ctx.server(_server(ctx))
    try:
        job = REBUILD_STARTER(ctx.cluster, server, f"rejoin job {ctx.job_id} (reseed)")
    except Exception as exc:  # noqa: BLE001 - a refusal (not provisioned, no source) is the next method's turn
        return _fall_through(ctx, rp.RESEED, str(getattr(exc, "detail", exc)))
    ctx.state.rejoin["rebuild_job"] = job.pk
    return Done(f"{server.address} handed to rebuild job {job.pk}: it is wiped and cloned from a replica")


def _rejoining(ctx: HaContext) -> bool:
    return _method(ctx) in (rp.GTID, rp.FLASHBACK)


def repoint(ctx: HaContext) -> StepOutcome:
    if not _rejoining(ctx):
        return Skipped(f"method {_method(ctx)}")
    address, primary = _server(ctx), ctx.state.primary
    session = ctx.session(address)
    host, port = ctx.host_port(primary)
    status = session.replication_status()
    if status is not None and points_at(status, host, port) and by_gtid(status) and replicating(status):
        return Done(f"already replicating from {primary}")
    if status is not None:
        session.stop_replication()
    if _method(ctx) == rp.FLASHBACK:  # the fork point, not gtid_binlog_pos (set by flashback_apply)
        session.query("SET GLOBAL gtid_slave_pos = %s", (ctx.state.rejoin["flashback"]["fork_point"],))
    else:
        session.adopt_own_history()  # its own transactions are in gtid_binlog_pos; gtid_slave_pos is stale
    if ctx.settings.semi_sync:
        session.semi_sync_as_replica()
    session.change_source(host, port, ctx.replication)
    session.start_replication()
    ctx.bump_epoch()
    return Done(
        f"replicating from {primary} by GTID from its own position {ctx.state.server_gtid_binlog_pos}"
    )


def sample_replica(ctx: HaContext, address: str, primary: str) -> rv.ReplicaSample:
    """One look: the primary's position first, then the server's status and applied position."""
    primary_position = ctx.session(primary).executed_gtids()
    session = ctx.session(address)
    status = session.replication_status()
    return rv.ReplicaSample.from_status(status, session.executed_gtids(), primary_position)


def verify(ctx: HaContext, timeout: float = VERIFY_TIMEOUT_SECONDS) -> StepOutcome:
    """Both threads running from the primary (started if a resumed job never did), then several
    consecutive good samples (clusters.domain.rejoin_verify): a thread that stops right after a first good
    look fails the step, and the server stays fenced (unfence does not run)."""
    if not _rejoining(ctx):
        return Skipped(f"method {_method(ctx)}")
    address, primary = _server(ctx), ctx.state.primary
    running = ha_after.verify_replication(ctx, primary, [address])
    if isinstance(running, SoftFailure):
        raise StepFailed(running.detail)
    flavour = ctx.session(address).dialect.flavour
    samples: list[rv.ReplicaSample] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            samples.append(sample_replica(ctx, address, primary))
        except ServerError as exc:
            raise StepFailed(f"{address}: could not sample its replication: {exc}") from exc
        verdict = rv.judge(
            samples,
            max_lag_seconds=ctx.settings.max_replica_delay_seconds,
            flavour=flavour,
            out_of_time=time.monotonic() >= deadline,
        )
        if verdict.state == rv.OK:
            return Done(f"{address} replicates from {primary}: {verdict.reason}")
        if verdict.state == rv.FAILED:
            raise StepFailed(f"{address} does not replicate steadily from {primary}: {verdict.reason}")
        time.sleep(rv.SAMPLE_INTERVAL_SECONDS)


def unfence(ctx: HaContext) -> StepOutcome:
    if not _rejoining(ctx):
        return Skipped(f"method {_method(ctx)}")
    address = _server(ctx)
    session = ctx.session(address)
    if ctx.settings.replicas_read_only and not session.read_only():
        session.set_read_only(True)
    Server.objects.filter(pk=ctx.server(address).pk).update(fenced=False, quarantined=False)
    Cluster.objects.filter(pk=ctx.cluster.pk).update(epoch=F("epoch") + 1, updated_at=timezone.now())
    record_event(
        ctx.cluster.pk,
        "server_rejoined",
        f"{address} rejoined as a replica of {ctx.state.primary} by {_method(ctx)} (job {ctx.job_id})",
        data={"server": address, "primary": ctx.state.primary, "job_id": ctx.job_id, "method": _method(ctx)},
    )
    return Done(f"{address} is a read-only replica of {ctx.state.primary}; fence flag cleared")


def quarantine(cluster: Cluster, server: Server, gtids: list[str], primary: str | None) -> None:
    """Mark the server quarantined: it holds transactions the cluster lacks, so it never rejoins by itself
    (recover or discard them, then rebuild it)."""
    changed = Server.objects.filter(pk=server.pk, quarantined=False).update(quarantined=True, fenced=True)
    if changed:
        record_event(
            cluster.pk,
            "server_quarantined",
            f"{server.address} holds transactions the primary {primary or '?'} lacks: {', '.join(gtids)}. "
            "Quarantined: it stays read-only and does not rejoin; recover or discard them, then rebuild it.",
            severity="error",
            data={"server": server.address, "server_id": server.pk, "gtids": gtids, "primary": primary},
        )


# --- the plan ---------------------------------------------------------------------------------------------

KIND = "rejoin"

PLAN = Plan(
    kind=KIND,
    steps=(
        StepSpec("check_server", check_server),
        StepSpec("flashback_inspect", flashback_inspect),
        StepSpec("flashback_save", flashback_save),
        StepSpec("flashback_apply", flashback_apply),
        StepSpec("reseed", reseed),
        StepSpec("repoint", repoint),
        StepSpec("verify_replication", verify),
        StepSpec("unfence", unfence),
    ),
    context=HaContext,
)

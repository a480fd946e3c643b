"""What an aborted failover undoes, decided from what the servers say now as well as from the job's saved
state (which may be a step behind: the failover's quiet steps are saved in the background).

Pure: clusters.jobs.failover_steps.abort_failover probes every server, turns each probe into `Observed`,
the job's state into `Saved`, asks `decide`, and applies the answer. The rules:

- a server other than the old primary is writable, or the job saved that writes were opened: the failover
  took effect; nothing is undone (two writable servers must never exist, so the old primary is never
  reopened);
- the candidate was promoted (saved, or seen once the promotion had started: it replicates from nothing,
  its semi-sync master side is on, or it is writable): it stays read-only for a person to decide, the others are left where they point,
  the old primary stays fenced;
- nothing was promoted: the replicas whose IO threads the job stopped replicate again from where they did
  (pointed back at their original source when the catch-up moved them), the old primary's fence flag is
  given back when it was the job's own, and the old primary may get its writes back; except that after
  the fence hook ran (it succeeded, or it started and its outcome is unknown; a hook that failed did not
  fence) nothing is ever pointed back at the old primary, nor reopened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from clusters.domain.detection import normalize_address

WRITES_OPEN = "writes_open"  # the failover took effect: nothing to undo
PROMOTED = "promoted"  # the candidate was promoted, writes not open: it stays read-only
NOT_PROMOTED = "not_promoted"  # undo what the job changed

LEFT_UNREACHABLE = "not reachable: left as it is"
LEFT_FENCED_SOURCE = "a fence ran on its source {old}: replication is never pointed back at it"
LEFT_NO_SOURCE = "replicates from nothing: left as it is"


@dataclass(frozen=True)
class Observed:
    """One server as a fresh probe found it (`reachable` False: nothing else is known)."""

    address: str
    reachable: bool
    read_only: bool | None = None  # None: unknown
    source: str | None = None  # "host:port" it replicates from; None: from nothing (or unknown)
    io_running: bool = False  # its IO thread runs or tries to connect
    semi_sync_master: bool = False


@dataclass(frozen=True)
class Saved:
    """What the job's saved state says it did (possibly a step behind the servers)."""

    old_primary: str | None
    candidate: str | None = None
    promotion_started: bool = False  # saved (waited for) right before the promotion's first statement
    promoted: bool = False
    writes_opened: bool = False
    io_stopped: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)  # replica -> its source before the job
    old_primary_was_fenced: bool | None = None
    fence_ran: bool = False  # the fence hook succeeded, or started with no known outcome (it may have fenced)


@dataclass(frozen=True)
class AbortDecision:
    phase: str  # WRITES_OPEN, PROMOTED or NOT_PROMOTED
    reason: str
    writable: tuple[str, ...] = ()
    unflag_old_primary: bool = False  # give back the fence flag (it was the job's own)
    reopen_old_primary: bool = False  # may give it read_only=0 (the caller still checks GTIDs)
    restart: Mapping[str, str | None] = field(default_factory=dict)  # replica -> source to point back at
    left_alone: Mapping[str, str] = field(default_factory=dict)  # server -> why it is not touched


def same_address(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    try:
        return normalize_address(a) == normalize_address(b)
    except ValueError:
        return a == b


def promoted_seen(candidate: Observed | None) -> str | None:
    """Why the candidate looks promoted (None: it does not, or it cannot be seen)."""
    if candidate is None or not candidate.reachable:
        return None
    if candidate.read_only is False:
        return "it is writable"
    if candidate.semi_sync_master:
        return "its semi-sync master side is on"
    if candidate.source is None:
        return "it replicates from nothing"
    return None


def decide(saved: Saved, observed: Iterable[Observed]) -> AbortDecision:
    servers = {o.address: o for o in observed}
    old = saved.old_primary
    writable = tuple(sorted(a for a, o in servers.items() if o.reachable and o.read_only is False))
    writable_others = [a for a in writable if not same_address(a, old)]
    candidate = saved.candidate
    if saved.writes_opened or writable_others:
        if writable_others and candidate and writable_others != [candidate]:
            reason = (
                f"{', '.join(writable_others)} writable (not the candidate {candidate}): check the cluster"
            )
        elif writable_others:
            reason = f"writes are open on {', '.join(writable_others)}: the failover took effect"
        else:
            reason = "writes were opened on the new primary: the failover took effect"
        return AbortDecision(WRITES_OPEN, reason, writable)
    # Before its first statement the promotion is saved and waited for: without that save, whatever the
    # candidate looks like (a semi-sync master side configured on every server, say) is not this job's.
    seen = promoted_seen(servers.get(candidate)) if candidate and saved.promotion_started else None
    if saved.promoted or seen:
        why = "the job saved it" if saved.promoted else seen
        return AbortDecision(
            PROMOTED,
            f"{candidate} was promoted ({why}) but stays read-only (writes not opened): check the cluster, "
            "then run a manual failover to it or fix it by hand",
            writable,
        )
    restart: dict[str, str | None] = {}
    left: dict[str, str] = {}
    for address in saved.io_stopped:
        seen_now = servers.get(address)
        original = saved.sources.get(address)
        if seen_now is None or not seen_now.reachable:
            left[address] = LEFT_UNREACHABLE
        elif saved.fence_ran and same_address(original or seen_now.source, old):
            left[address] = LEFT_FENCED_SOURCE.format(old=old)
        elif seen_now.source is None:
            left[address] = LEFT_NO_SOURCE
        elif seen_now.io_running and (not original or same_address(seen_now.source, original)):
            continue  # replicating from where it did (the job never got to stop it): nothing to undo
        else:
            restart[address] = original if original and not same_address(seen_now.source, original) else None
    mine = saved.old_primary_was_fenced is False
    reopen = bool(old) and not saved.old_primary_was_fenced and not saved.fence_ran and not writable_others
    reason = "nothing was promoted" + (
        f"; the fence hook ran on {old}: it stays fenced" if saved.fence_ran else ""
    )
    return AbortDecision(
        NOT_PROMOTED,
        reason,
        writable,
        unflag_old_primary=bool(old) and mine and not saved.fence_ran,
        reopen_old_primary=reopen,
        restart=restart,
        left_alone=left,
    )

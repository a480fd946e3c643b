"""Backup decisions in plain Python: which server to back up from, when a scheduled backup is due, which
archived binary logs chain from a backup's GTID position without a gap, the recoverable window, what to
restore for a point in time, and what retention removes.

A binlog file is described by the GTID lists at its start and end (`gtid_start`: the file's Gtid_list
event, a binlog state; `gtid_end`: the next file's). A chain starts at a backup's position and takes, at
each point, a file whose start is at or before that point and whose end is past it; `mariadb-binlog
--start-position=<point>` then skips what the restored server already has. After a failover the new
primary's files carry the old primary's transactions too (log_slave_updates), so the chain continues on
them from the old chain's end: no gap, no duplicate. The old chain's end must be in the new primary's
binlog state with the same server_id, or the old primary had archived transactions the new one never
received (a divergence: replaying either history would be wrong for the other).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from clusters.domain.gtid import GtidError, MariadbBinlogState, MariadbGtidPos


def position(text: str) -> MariadbGtidPos:
    """The position of a GTID list or binlog state (latest GTID per domain)."""
    return MariadbBinlogState.parse(text).position()


@dataclass(frozen=True)
class ArchivedFile:
    id: int
    server: str
    file_name: str
    gtid_start: str
    gtid_end: str
    closed_at: datetime


@dataclass(frozen=True)
class ChainLink:
    file: ArchivedFile
    start_position: str  # what mariadb-binlog --start-position gets for this file


@dataclass
class Chain:
    """The files that follow a position, in replay order; `end` the position after the last one, and the
    reason the chain stops there when files exist beyond it (a gap or a divergence)."""

    links: list[ChainLink] = field(default_factory=list)
    end: str = ""
    end_time: datetime | None = None
    broken: str = ""


def build_chain(files: Iterable[ArchivedFile], start: str) -> Chain:
    """Chain archived files from `start` (a backup's GTID position)."""
    pending = list(files)
    pos = position(start)
    chain = Chain(end=str(pos))
    last_server = None
    while True:
        candidates = []
        for f in pending:
            try:
                f_start, f_end = position(f.gtid_start), position(f.gtid_end)
            except GtidError:
                continue
            if pos.contains(f_start) and not pos.contains(f_end):
                candidates.append((f, f_end))
        if not candidates:
            break
        # Prefer the same server's next file, then the file that reaches furthest.
        candidates.sort(
            key=lambda c: (c[0].server == last_server, c[1].count(), c[0].closed_at), reverse=True
        )
        chosen, chosen_end = candidates[0]
        if last_server is not None and chosen.server != last_server and chain.links:
            problem = divergence(chain.end, chosen.gtid_end)
            if problem:
                chain.broken = f"{chosen.server} {chosen.file_name}: {problem}"
                return chain
        chain.links.append(ChainLink(chosen, str(pos)))
        pending.remove(chosen)
        pos = chosen_end
        chain.end = str(pos)
        chain.end_time = chosen.closed_at
        last_server = chosen.server
    beyond = [f for f in pending if _safe_position(f.gtid_end) and not pos.contains(position(f.gtid_end))]
    if beyond:
        first = min(beyond, key=lambda f: position(f.gtid_start).count())
        chain.broken = (
            f"gap: the archive holds nothing from {pos or '(empty)'} to {first.gtid_start} "
            f"({first.server} {first.file_name} starts there)"
        )
    return chain


def _safe_position(text: str) -> bool:
    try:
        position(text)
    except GtidError:
        return False
    return True


def divergence(chain_end: str, new_state: str) -> str:
    """Whether the chain's last transaction per domain is in another server's binlog state (same
    server_id, same or later sequence); the reason when it is not."""
    state = MariadbBinlogState.parse(new_state)
    missing = [g for g in position(chain_end).gtids if g.seq and state.seq(g.domain, g.server_id) < g.seq]
    if missing:
        return (
            "diverged: the archive holds "
            + ", ".join(str(g) for g in missing)
            + " which the new primary never had (transactions lost in a failover)"
        )
    return ""


# --- where and when ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceCandidate:
    address: str
    is_primary: bool
    healthy: bool  # reachable, replicating with both threads, not in maintenance
    lag_seconds: float | None = None


def choose_source(candidates: Sequence[SourceCandidate]) -> SourceCandidate | None:
    """A healthy replica (the least lagging), never the primary when one exists; the primary only when
    the cluster has no healthy replica (then the backup says so)."""
    replicas = [c for c in candidates if not c.is_primary and c.healthy]
    if replicas:
        return min(replicas, key=lambda c: (c.lag_seconds or 0.0, c.address))
    return next((c for c in candidates if c.is_primary and c.healthy), None)


def parse_window(window: str) -> tuple[time, time] | None:
    if not window:
        return None
    first, last = window.split("-")
    h1, m1 = (int(x) for x in first.split(":"))
    h2, m2 = (int(x) for x in last.split(":"))
    return time(h1, m1), time(h2, m2)


def in_window(window: str, now: datetime) -> bool:
    parsed = parse_window(window)
    if parsed is None:
        return False
    start, end = parsed
    current = now.time().replace(second=0, microsecond=0)
    if start <= end:
        return start <= current < end
    return current >= start or current < end  # a window across midnight


RETRY_AFTER = timedelta(minutes=10)


def scheduled_backup_due(
    window: str,
    now: datetime,
    last_success: datetime | None,
    last_attempt: datetime | None,
) -> bool:
    """A daily backup in the window: due when none succeeded in the last 20 hours, and the last attempt
    (a failed one, e.g. preempted by a failover) is at least RETRY_AFTER old."""
    if not in_window(window, now):
        return False
    if last_success is not None and now - last_success < timedelta(hours=20):
        return False
    return last_attempt is None or now - last_attempt >= RETRY_AFTER


# --- restore ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupPoint:
    id: int
    gtid: str
    ended_at: datetime
    verified: bool | None


@dataclass(frozen=True)
class Window:
    start: datetime | None
    end: datetime | None

    def describe(self) -> str:
        if self.start is None or self.end is None:
            return "no recoverable time (no completed backup)"
        return f"from {self.start.isoformat()} to {self.end.isoformat()}"


def recoverable_window(backups: Sequence[BackupPoint], files: Sequence[ArchivedFile]) -> Window:
    """From the earliest usable backup's end to the end of the longest binlog chain after the latest
    backup (or that backup's own end when nothing is archived after it). A backup known to be bad
    (verified false) is not usable."""
    usable = sorted((b for b in backups if b.verified is not False), key=lambda b: b.ended_at)
    if not usable:
        return Window(None, None)
    latest = usable[-1]
    chain = build_chain(files, latest.gtid)
    end = max(latest.ended_at, chain.end_time) if chain.end_time else latest.ended_at
    return Window(usable[0].ended_at, end)


@dataclass(frozen=True)
class RestorePoint:
    backup: BackupPoint
    links: list[ChainLink]


class OutsideWindow(ValueError):
    pass


def plan_restore(backups: Sequence[BackupPoint], files: Sequence[ArchivedFile], at: datetime) -> RestorePoint:
    """The latest usable backup that ended at or before `at` and the archived files to replay up to `at`;
    OutsideWindow (naming the window) when `at` cannot be reached."""
    window = recoverable_window(backups, files)
    usable = sorted(
        (b for b in backups if b.verified is not False and b.ended_at <= at), key=lambda b: b.ended_at
    )
    if not usable or window.end is None or at > window.end:
        raise OutsideWindow(f"{at.isoformat()} is outside the recoverable window ({window.describe()})")
    backup = usable[-1]
    chain = build_chain(files, backup.gtid)
    if at > backup.ended_at and (chain.end_time is None or chain.end_time < at):
        raise OutsideWindow(
            f"{at.isoformat()} is past what the archive holds after backup {backup.id} "
            f"({chain.broken or 'nothing archived after it'}); recoverable window {window.describe()}"
        )
    # Files that start after `at` add nothing: stop at the first one whose predecessor closed after `at`.
    links: list[ChainLink] = []
    for link in chain.links:
        links.append(link)
        if link.file.closed_at >= at:
            break
    return RestorePoint(backup, links)


# --- retention --------------------------------------------------------------------------------------------


def expired_backups(
    backups: Sequence[BackupPoint], now: datetime, retention_days: int, keep_until: dict[int, datetime]
) -> list[int]:
    """Backups older than the retention period, never the latest usable one (a cluster always keeps one
    to restore from); a backup with a keep_until (final backup) expires at that time instead."""
    cutoff = now - timedelta(days=retention_days)
    usable = sorted((b for b in backups if b.verified is not False), key=lambda b: b.ended_at)
    latest = usable[-1].id if usable else None
    expired = []
    for b in backups:
        if b.id in keep_until:
            if keep_until[b.id] <= now:
                expired.append(b.id)
        elif b.ended_at < cutoff and b.id != latest:
            expired.append(b.id)
    return expired


def unneeded_binlogs(kept_backups: Sequence[BackupPoint], files: Sequence[ArchivedFile]) -> list[int]:
    """Archived files no kept backup can use: those entirely at or before the oldest kept backup's
    position. With no backup left, every file."""
    if not kept_backups:
        return [f.id for f in files]
    oldest = min(kept_backups, key=lambda b: b.ended_at)
    start = position(oldest.gtid)
    return [f.id for f in files if _safe_position(f.gtid_end) and start.contains(position(f.gtid_end))]

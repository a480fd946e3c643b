"""Backup decisions: the source, the schedule, the binlog chain across a failover, gaps and divergence,
the recoverable window, restore planning and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clusters.domain.backup_plan import (
    ArchivedFile,
    BackupPoint,
    OutsideWindow,
    SourceCandidate,
    build_chain,
    choose_source,
    expired_backups,
    in_window,
    plan_restore,
    recoverable_window,
    scheduled_backup_due,
    unneeded_binlogs,
)

T0 = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)


def f(id, server, name, start, end, minute):
    return ArchivedFile(id, server, name, start, end, T0 + timedelta(minutes=minute))


# primary a (server_id 1) wrote 1..30; failover at 20: b (server_id 2) had 1..20 and writes 21..
FILES = [
    f(1, "a", "mysql-bin.000001", "", "0-1-10", 1),
    f(2, "a", "mysql-bin.000002", "0-1-10", "0-1-20", 2),
    # b's files after the failover hold a's transactions too (log_slave_updates)
    f(3, "b", "mysql-bin.000001", "0-1-12", "0-1-15", 3),  # its older files were purged
    f(4, "b", "mysql-bin.000002", "0-1-15", "0-1-20,0-2-25", 4),
    f(5, "b", "mysql-bin.000003", "0-1-20,0-2-25", "0-1-20,0-2-30", 5),
]


def test_chain_follows_the_new_primary_from_the_old_chains_end():
    chain = build_chain(FILES, "0-1-5")
    assert [(link.file.id, link.start_position) for link in chain.links] == [
        (1, "0-1-5"),
        (2, "0-1-10"),
        (4, "0-1-20"),  # b's file from a's end: what a had archived is skipped, nothing missing
        (5, "0-2-25"),
    ]
    assert chain.end == "0-2-30" and not chain.broken


def test_a_gap_is_named():
    files = [FILES[0], f(6, "b", "mysql-bin.000009", "0-2-40", "0-2-50", 9)]
    chain = build_chain(files, "0-1-5")
    assert chain.end == "0-1-10" and chain.broken.startswith("gap:")


def test_a_divergence_is_named():
    # a archived 0-1-21, which b never received: b's state has 0-1-20 then its own 0-2-21
    files = [
        f(1, "a", "x.1", "0-1-10", "0-1-21", 1),
        f(2, "b", "y.1", "0-1-20", "0-1-20,0-2-30", 2),
    ]
    chain = build_chain(files, "0-1-10")
    assert "diverged" in chain.broken and "0-1-21" in chain.broken


def test_source_is_a_healthy_replica_never_the_primary():
    candidates = [
        SourceCandidate("p:1", True, True),
        SourceCandidate("r:1", False, True, 3.0),
        SourceCandidate("r:2", False, True, 0.0),
        SourceCandidate("r:3", False, False, 0.0),
    ]
    assert choose_source(candidates).address == "r:2"
    assert choose_source(
        [SourceCandidate("p:1", True, True), SourceCandidate("r:3", False, False)]
    ).is_primary
    assert choose_source([SourceCandidate("p:1", True, False)]) is None


def test_window_and_schedule():
    assert in_window("02:00-04:00", T0) and not in_window("03:00-04:00", T0)
    assert in_window("23:00-02:30", T0)  # across midnight
    assert scheduled_backup_due("02:00-04:00", T0, None, None)
    assert not scheduled_backup_due("02:00-04:00", T0, T0 - timedelta(hours=2), None)
    # a preempted attempt is retried, not at once
    assert not scheduled_backup_due("02:00-04:00", T0, None, T0 - timedelta(minutes=2))
    assert scheduled_backup_due("02:00-04:00", T0, None, T0 - timedelta(minutes=11))


def test_restore_plan_and_window():
    backups = [BackupPoint(7, "0-1-5", T0, True)]
    window = recoverable_window(backups, FILES)
    assert window.start == T0 and window.end == T0 + timedelta(minutes=5)
    point = plan_restore(backups, FILES, T0 + timedelta(minutes=3, seconds=30))
    assert point.backup.id == 7 and [link.file.id for link in point.links] == [1, 2, 4]
    with pytest.raises(OutsideWindow, match="recoverable window"):
        plan_restore(backups, FILES, T0 + timedelta(minutes=6))
    with pytest.raises(OutsideWindow):
        plan_restore(backups, FILES, T0 - timedelta(seconds=1))
    # a failed backup is never restored from
    with pytest.raises(OutsideWindow):
        plan_restore([BackupPoint(7, "0-1-5", T0, False)], FILES, T0 + timedelta(minutes=1))


def test_retention_keeps_the_latest_and_final_backups_until_their_time():
    old = BackupPoint(1, "0-1-5", T0 - timedelta(days=10), True)
    older = BackupPoint(2, "0-1-2", T0 - timedelta(days=12), True)
    latest = BackupPoint(3, "0-1-12", T0 - timedelta(days=9), True)
    assert sorted(expired_backups([old, older, latest], T0, 7, {})) == [1, 2]
    assert expired_backups([old], T0, 7, {}) == []  # the only one stays
    assert expired_backups([old, latest], T0, 7, {1: T0 + timedelta(days=1)}) == []
    assert expired_backups([old, latest], T0, 7, {1: T0 - timedelta(seconds=1)}) == [1]
    assert unneeded_binlogs([latest], FILES) == [1]  # entirely before 0-1-12
    assert unneeded_binlogs([], FILES) == [1, 2, 3, 4, 5]

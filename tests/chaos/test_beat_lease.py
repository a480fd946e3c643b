"""Two beats, one lease: while both run only one sends the schedule; SIGKILL the active one and the
standby takes over within the lease plus a second; no scheduled task is ever sent twice and no cluster is
ticked twice in a period. Real processes (two `celery -A controlplane beat`, a worker) and a real
replicating MariaDB cluster."""

from __future__ import annotations

import signal
import time

import pytest

from clusters import hotstate
from tests.chaos.conftest import log_times
from tests.integration.failover_helpers import register_cluster
from tests.services_plugin import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

INTERVALS = {"dispatch-ticks": 1.0, "reap-jobs": 2.0, "check-proxies": 5.0}  # controlplane/celery.py
TOOK = "took the lease"  # controlplane/beat.py


def _sends(beat, entry: str) -> list[float]:
    return log_times(beat.log_text(), f"Sending due task {entry} ")


def _active(beat) -> bool:
    return TOOK in beat.log_text()


def test_killing_the_active_beat_hands_the_schedule_to_the_standby_without_doubling(
    sandbox_cluster, dbpilot_processes, settings
):
    lease = settings.DBPILOT_BEAT_LEASE_SECONDS
    cluster = register_cluster(sandbox_cluster, "beats")
    worker = dbpilot_processes(name="chaos-beat-worker", concurrency=2)  # every queue
    wait_for(lambda: " ready." in worker.log_text(), 30, message="the worker")
    beats = [dbpilot_processes("beat", name=f"chaos-beat-{n}") for n in (1, 2)]
    wait_for(lambda: any(_active(b) for b in beats), 20, message="a beat to take the lease")
    time.sleep(6)  # both beats running
    active, standby = (beats[0], beats[1]) if _active(beats[0]) else (beats[1], beats[0])
    assert not _active(standby), "two beats hold the lease"
    assert _sends(standby, "dispatch-ticks") == []

    killed_at = time.time()
    active.kill(signal.SIGKILL)
    wait_for(lambda: _active(standby), lease + 5, interval=0.05, message="the standby to take the lease")
    time.sleep(6)  # the new active beat alone
    ended_at = time.time()

    for entry, interval in INTERVALS.items():
        before, after = _sends(active, entry), _sends(standby, entry)
        assert all(t <= killed_at for t in before) and all(t >= killed_at for t in after), entry
        sends = sorted(before + after)
        assert sends, entry
        gaps = [b - a for a, b in zip(sends, sends[1:], strict=False)]
        # Never twice: consecutive sends of an entry are at least its interval apart (beat's own jitter aside).
        assert min(gaps, default=interval) >= interval - 0.2, (entry, gaps)
    ticks_sent = sorted(_sends(active, "dispatch-ticks") + _sends(standby, "dispatch-ticks"))
    handover = min(t for t in ticks_sent if t >= killed_at) - max(t for t in ticks_sent if t <= killed_at)
    print(f"ticks dispatched: {len(ticks_sent)}; gap across the kill {handover:.2f}s (lease {lease}s)")
    assert handover <= lease + 2.5, f"ticks stopped for {handover:.1f}s"
    after_takeover = [t for t in ticks_sent if t >= killed_at]
    assert len(after_takeover) >= 4  # ticks go on, about one a second

    # The worker's side: the cluster (the only one) was ticked at most once per shard dispatched, and
    # dispatch ran at most once per beat send; ticks went on after the takeover.
    log = worker.log_text()
    dispatches = [
        t for t in log_times(log, "workers.tasks.dispatch_ticks[", "] succeeded in") if t <= ended_at
    ]
    shards = [
        t for t in log_times(log, "workers.tasks.dispatch_ticks[", "] succeeded in", "s: 1") if t <= ended_at
    ]
    executed = [t for t in log_times(log, "workers.tasks.monitor_shard[", "] succeeded in") if t <= ended_at]
    assert len(dispatches) <= len(ticks_sent)
    assert len(executed) <= len(shards), (len(executed), len(shards))
    assert any(t > killed_at + lease for t in executed), "no tick after the takeover"
    print(f"dispatches run {len(dispatches)}, shards sent {len(shards)}, cluster ticks run {len(executed)}")
    snapshot = hotstate.read_topology(cluster.id)
    assert snapshot and snapshot["primary"], snapshot

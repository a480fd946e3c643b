"""Fencing servers that dbpilot failed over away from, when they reappear; rejoining or quarantining them.

A server is marked `fenced` by the failover that leaves it (clusters.jobs.failover_steps). At every tick,
in any mode, paused or not, `after_tick` looks at the fenced servers that answered
(clusters.domain.failover_plan.fence_plans, pure):

1. a writable one is made read-only at once, in the tick (super_read_only too on MySQL); if a write
   transaction holds the global read lock it needs (a commit hanging on a semi-sync acknowledgement that
   will never come), the writing client sessions are killed first, in the order that releases no other
   commit (clusters.adapters.fence): a client sees an error, never an OK;
2. with `autorejoin` (and no pause), one whose GTIDs are all on the current primary is repointed as its
   replica by a `rejoin` job; one holding transactions the primary lacks is quarantined
   (`Server.quarantined`, an event listing them; monitoring shows SERVER_QUARANTINED and ERRANT_GTID),
   and never rejoins by itself;
3. a fenced server already replicating read-only from the primary gets its fence flag cleared.

A tick acting on an older epoch than the cluster's does nothing: a job may be promoting that server.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.utils import timezone

from clusters.adapters import fence as safe_fence
from clusters.adapters.mysql import ConnectOptions, Credentials, ServerError
from clusters.credentials import admin_credentials, cluster_settings, connect_options
from clusters.domain import failover_plan as plan
from clusters.events import record_event
from clusters.jobs.engine import ActiveJobExists, create_job
from clusters.jobs.rejoin_steps import KIND as REJOIN_KIND
from clusters.jobs.rejoin_steps import quarantine
from clusters.jobs.runner import start_job
from clusters.models import Cluster, Job, Server
from clusters.services.quarantine import release_quarantined, repairs_before_quarantine
from tenants.platform import platform_paused

log = logging.getLogger(__name__)

REJOIN_RETRY_SECONDS = (
    15  # a rejoin that did not succeed is retried after 15 s, 30 s, 60 s... (at most 10 min)
)
REJOIN_RETRY_MAX_SECONDS = 600
PRIMARY_CHANGING_KINDS = ("switchover", "failover")


BLIND_FENCE_EVERY_SECONDS = 5.0
_blind_tried: dict[tuple[int, str], float] = {}  # (cluster, address) -> monotonic time of the last try


def _blind_fence(result, epoch: int | None) -> None:
    """Fenced servers that time out on the probe may still be writable (see plan.blind_fence_targets):
    try read_only=1 on them, at most every BLIND_FENCE_EVERY_SECONDS."""
    targets = plan.blind_fence_targets(result.topology, result.probes)
    now = time.monotonic()
    due = [
        a
        for a in targets
        if now - _blind_tried.get((result.cluster_id, a), -1e9) >= BLIND_FENCE_EVERY_SECONDS
    ]
    if not due:
        return
    cluster = Cluster.objects.select_related("tenant").filter(pk=result.cluster_id).first()
    if cluster is None or (epoch is not None and cluster.epoch != epoch):
        return
    servers = {s.address: s for s in cluster.servers.all()}
    settings = cluster_settings(cluster)
    for address in due:
        _blind_tried[(result.cluster_id, address)] = now
        server = servers.get(address)
        if server is None:
            continue
        try:
            done = make_read_only(address, admin_credentials(cluster), connect_options(settings))
        except ServerError:
            continue  # frozen or gone: tried again later, and the regular fence runs once it answers
        record_event(
            cluster.pk,
            "server_fenced",
            f"{address} did not answer its probe but took commands: {done}",
            severity="warning",
            data={"server": address, "server_id": server.pk},
        )


class FreshCluster:
    """The cluster row as it is now (its epoch may have moved since the tick began), read at most once for
    everything that decides after one tick (fencing, then failover)."""

    def __init__(self, cluster_id: int):
        self.cluster_id = cluster_id
        self._read = False
        self._cluster: Cluster | None = None

    def __call__(self) -> Cluster | None:
        if not self._read:
            self._cluster = Cluster.objects.select_related("tenant").filter(pk=self.cluster_id).first()
            self._read = True
        return self._cluster


def after_tick(result, *, epoch: int | None = None, fresh: FreshCluster | None = None) -> None:
    try:
        _blind_fence(result, epoch)
    except Exception:  # noqa: BLE001 - the regular fence below still runs
        log.exception("cluster %s: fencing servers that do not answer their probe failed", result.cluster_id)
    _release_quarantined(result, epoch, fresh)
    plans = plan.fence_plans(result.topology, result.probes, result.settings)
    if not plans:
        return
    if any(p.next_step in (plan.FENCE_REJOIN, plan.FENCE_QUARANTINE) for p in plans):
        if result.settings.paused or platform_paused():
            plans = plan.fence_plans(result.topology, result.probes, result.settings, may_rejoin=False)
    cluster = (fresh or FreshCluster(result.cluster_id))()
    if cluster is None or (epoch is not None and cluster.epoch != epoch):
        return  # a job changed the topology since this tick began
    servers = {s.address: s for s in cluster.servers.all()}
    for fence in plans:
        server = servers.get(fence.address)
        if server is None:
            continue
        if fence.make_read_only:
            fence_read_only(cluster, server, fence.reason)
        if fence.next_step == plan.FENCE_QUARANTINE and repairs_before_quarantine(cluster):
            start_rejoin(cluster, server)  # its rejoin_method (flashback, reseed) repairs or quarantines it
        elif fence.next_step == plan.FENCE_QUARANTINE:
            quarantine(cluster, server, list(fence.extra_gtids), result.topology.primary)
        elif fence.next_step == plan.FENCE_REJOIN:
            start_rejoin(cluster, server)
        elif fence.next_step == plan.FENCE_SETTLED:
            Server.objects.filter(pk=server.pk, fenced=True).update(fenced=False)
            record_event(
                cluster.pk,
                "server_unfenced",
                f"{server.address} replicates read-only from the primary: no longer fenced",
                data={"server": server.address, "server_id": server.pk},
            )


def _release_quarantined(result, epoch: int | None, fresh: FreshCluster | None) -> None:
    """Quarantine ends by itself once the server is repaired (clusters.services.quarantine)."""
    if not any(s.quarantined for s in result.topology.servers):
        return
    cluster = (fresh or FreshCluster(result.cluster_id))()
    if cluster is None or (epoch is not None and cluster.epoch != epoch):
        return
    try:
        release_quarantined(result, cluster)
    except Exception:  # noqa: BLE001 - fencing below must still run
        log.exception("cluster %s: ending quarantines failed", result.cluster_id)


def make_read_only(address: str, credentials: Credentials, options: ConnectOptions) -> str:
    """read_only=1 (super_read_only on MySQL); when write transactions or commits waiting for a semi-sync
    acknowledgement hold it up, the writing client sessions (never replication or dbpilot's own) are
    ended in the order that releases no commit with an OK (clusters.adapters.fence)."""
    return safe_fence.make_read_only(address, credentials, options)


def fence_read_only(cluster: Cluster, server: Server, reason: str) -> bool:
    settings = cluster_settings(cluster)
    try:
        done = make_read_only(server.address, admin_credentials(cluster), connect_options(settings))
    except ServerError as exc:
        record_event(
            cluster.pk,
            "fence_failed",
            f"Could not make {server.address} read-only ({reason}): {exc}",
            severity="critical",
            data={"server": server.address, "server_id": server.pk, "error": str(exc)},
        )
        return False
    record_event(
        cluster.pk,
        "server_fenced",
        f"{server.address} reappeared writable ({reason}): {done}",
        severity="warning",
        data={"server": server.address, "server_id": server.pk},
    )
    return True


def rejoin_backoff_seconds(failures: int) -> float:
    """After `failures` unsuccessful rejoins of a server within the hour, wait this long before the next."""
    return 0.0 if failures <= 0 else min(REJOIN_RETRY_SECONDS * 2 ** (failures - 1), REJOIN_RETRY_MAX_SECONDS)


def start_rejoin(cluster: Cluster, server: Server) -> Job | None:
    if Job.objects.active_ha(cluster.pk) is not None:
        return None
    now = timezone.now()
    # Rejoins that failed against an earlier primary (it died under them, say) say nothing about this one:
    # the backoff counts only those since the last switchover or failover.
    since = now - timedelta(hours=1)
    changed = (
        Job.objects.filter(cluster=cluster, kind__in=PRIMARY_CHANGING_KINDS, state=Job.State.SUCCEEDED)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    if changed is not None and changed > since:
        since = changed
    unsuccessful = list(
        Job.objects.filter(
            cluster=cluster,
            kind=REJOIN_KIND,
            params__server=server.address,
            created_at__gte=since,
        )
        .exclude(state=Job.State.SUCCEEDED)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
    )
    if unsuccessful and (now - unsuccessful[0]).total_seconds() < rejoin_backoff_seconds(len(unsuccessful)):
        return None
    try:
        job = create_job(
            cluster, REJOIN_KIND, params={"server": server.address}, requested_by="dbpilot (autorejoin)"
        )
    except ActiveJobExists:
        return None
    start_job(job.pk)
    return job

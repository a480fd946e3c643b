"""What the steps of one HA job share: the cluster as the job found it, sessions to its servers, fresh
probes and their analysis, and the job's typed state (clusters.jobs.state: what a resumed job needs to know).

Sessions are opened once, in parallel, before the write freeze, and kept for the whole job
(clusters.adapters.executor.ServerSession). Probes reuse the monitoring probe (read-only).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from django.db.models import F
from django.utils import timezone

from clusters.adapters.executor import ServerSession
from clusters.adapters.mysql import ConnectOptions, Credentials, ServerError
from clusters.adapters.probe import probe_servers
from clusters.credentials import (
    admin_credentials,
    cluster_settings,
    connect_options,
    replication_credentials,
)
from clusters.domain.addresses import parse_address
from clusters.domain.probe import TIMEOUT, ProbeResult
from clusters.domain.settings import ClusterSettings
from clusters.domain.topology import Topology, analyze
from clusters.jobs.state import JobState
from clusters.models import Cluster, Job, Server

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

EXECUTOR_READ_TIMEOUT = 10.0  # STOP SLAVE on a replica whose source is unreachable takes seconds


def observe(
    cluster: Cluster,
    settings: ClusterSettings,
    *,
    servers: list[Server] | None = None,
    credentials: Credentials | None = None,
    options: ConnectOptions | None = None,
    counted_down: str | None = None,
) -> tuple[Topology, dict[str, ProbeResult]]:
    """Probe the cluster's servers now (read-only, in parallel) and analyse: the one observation of the
    request path and of jobs. `counted_down`: a primary the tick or the request just found failed, not
    probed again here and counted as down (`failcount` failures)."""
    servers = list(cluster.servers.all()) if servers is None else servers
    credentials = admin_credentials(cluster) if credentials is None else credentials
    options = connect_options(settings) if options is None else options
    probes = probe_servers([(s.address, credentials, options) for s in servers if s.address != counted_down])
    failures: dict[str, int] = {}
    known = cluster.primary.address if cluster.primary_id else None
    if counted_down is None and known in probes and not probes[known].reachable:
        # One failed probe of the primary (a slow moment, a stale pooled connection) must not leave a live
        # primary "suspect" for a request: look once more, on a new connection, before judging.
        probes.update(probe_servers([(known, credentials, options)]))
    if counted_down is not None:
        probes[counted_down] = ProbeResult(address=counted_down, outcome=TIMEOUT, error="counted as down")
        failures[counted_down] = settings.failcount
        known = counted_down
    topology = analyze(
        [s.as_inventory() for s in servers], probes, settings, failures, time.time(), known_primary=known
    )
    return topology, probes


class HaContext:
    """Built by a plan's `context(job, result)`; closed by the engine when the job ends."""

    def __init__(self, job: Job, result: dict):
        self.job_id = job.pk
        self.kind = job.kind
        self.params: dict = dict(job.params or {})
        self.state = JobState.from_result(result)  # what the steps decided and did; saved after each step
        self.attempt = job.attempts
        self.cluster = Cluster.objects.select_related("tenant", "primary").get(pk=job.cluster_id)
        self.servers: list[Server] = list(self.cluster.servers.all())
        self.settings = cluster_settings(self.cluster)
        self.admin = admin_credentials(self.cluster)
        self.replication = replication_credentials(self.cluster)
        probe_options = connect_options(self.settings)
        self.options = ConnectOptions(
            connect_timeout=probe_options.connect_timeout,
            read_timeout=EXECUTOR_READ_TIMEOUT,
            tls=probe_options.tls,
            tls_ca=probe_options.tls_ca,
        )
        self.probe_options = probe_options
        self._sessions: dict[tuple[str, str], ServerSession] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            max_workers=max(4, len(self.servers) + 1), thread_name_prefix=f"job{job.pk}"
        )
        self.probes: dict[str, ProbeResult] = {}
        self.topology: Topology | None = None
        # The job's election and the observation it was made from: steps elect again only after a new probe.
        self.election: Any = None
        self.elected_from: Topology | None = None
        # In-memory only (a resumed job re-checks the servers instead): what this worker already did.
        self.prepared: set[tuple[str, str]] = set()  # (server, source) pointed at, not yet started
        self.background: dict[str, Future] = {}  # SQL threads being started while writes open
        self.checkpoint: Callable[[], None] = lambda: None  # set by the engine: save the result now
        # set by the engine: the lease's local check; past its deadline no session sends anything
        self.lease_valid: Callable[[], bool] = lambda: True

    # --- servers --------------------------------------------------------------------------------------

    @property
    def label(self) -> str:
        return self.cluster.label

    @property
    def addresses(self) -> list[str]:
        return [s.address for s in self.servers]

    def server(self, address: str) -> Server:
        for server in self.servers:
            if server.address == address:
                return server
        raise KeyError(address)

    def host_port(self, address: str) -> tuple[str, int]:
        parsed = parse_address(address)
        return parsed.host, parsed.port

    # --- sessions -------------------------------------------------------------------------------------

    def session(self, address: str, purpose: str = "main") -> ServerSession:
        """The job's session to a server, opened on first use (raises ServerError when unreachable).
        `purpose` gives a second connection to the same server (e.g. one holds the write freeze while
        another lists and kills sessions)."""
        with self._lock:
            session = self._sessions.get((address, purpose))
            if session is None:
                session = ServerSession(address, self.admin, self.options)
                session.guard = lambda: self.lease_valid()  # type: ignore[attr-defined]
                self._sessions[(address, purpose)] = session
        return session.open()

    def has_session(self, address: str, purpose: str = "main") -> bool:
        with self._lock:
            session = self._sessions.get((address, purpose))
        return session is not None and session.is_open

    def open_sessions(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Open (address, purpose) sessions in parallel; returns those that failed, with the error."""
        outcomes = self.parallel(lambda key: self.session(*key), list(wanted))
        return {key: str(v) for key, v in outcomes.items() if isinstance(v, Exception)}

    def drop_session(self, address: str, purpose: str = "main") -> None:
        with self._lock:
            session = self._sessions.pop((address, purpose), None)
        if session is not None:
            session.close()

    def parallel(self, function: Callable[[T], R], items: list[T]) -> dict[T, R | Exception]:
        """Run `function` on every item at once; exceptions are returned, not raised."""
        futures = {item: self._pool.submit(function, item) for item in items}
        out: dict[T, R | Exception] = {}
        for item, future in futures.items():
            try:
                out[item] = future.result()
            except Exception as exc:  # noqa: BLE001 - the caller decides what a failure means
                out[item] = exc
        return out

    def submit(self, function: Callable[..., R], *args: Any):
        return self._pool.submit(function, *args)

    # --- observing ------------------------------------------------------------------------------------

    def probe(self, *, counted_down: str | None = None) -> Topology:
        """Probe every server (read-only, in parallel) and analyse the picture (`counted_down`: see observe)."""
        self.topology, self.probes = observe(
            self.cluster,
            self.settings,
            servers=self.servers,
            credentials=self.admin,
            options=self.probe_options,
            counted_down=counted_down,
        )
        return self.topology

    # --- recording ------------------------------------------------------------------------------------

    def bump_epoch(self) -> int:
        """Every topology change bumps the cluster's epoch: ticks acting on an older one do nothing."""
        Cluster.objects.filter(pk=self.cluster.pk).update(epoch=F("epoch") + 1, updated_at=timezone.now())
        epoch = Cluster.objects.filter(pk=self.cluster.pk).values_list("epoch", flat=True).first() or 0
        self.cluster.epoch = epoch
        self.state.epoch = epoch
        return epoch

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            try:
                session.close()
            except ServerError:
                pass
        self._pool.shutdown(wait=False, cancel_futures=True)

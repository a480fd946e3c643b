"""Between ticks, notice at once when a primary's process dies, and tick its cluster right away.

A tick probes every `tick_seconds`, so a crash waits half a tick on average before its first failed probe.
When mariadbd dies (killed, crashed, out of memory), the kernel closes its sockets at that instant: an idle
connection to it becomes readable (end of file). Each worker process that ticks a cluster keeps one idle,
authenticated connection to its primary, and one thread waits on all of them; when one becomes readable
the cluster is ticked at once, through the same single-flight tick as beat's (monitoring.monitor_shard),
which then re-probes every `reprobe_interval_ms` as usual.

This only moves the first probe earlier: `failcount`, the replicas' confirmation and every guard still
decide. A frozen or isolated primary sends nothing, so the ticks find it as before. The connection costs
one session per primary per worker process (`wait_timeout` raised on it so the server keeps it).

On by default in Celery worker processes; `DBPILOT_PRIMARY_WATCH` (setting or environment) "1" or "0"
forces it. Tests that tick in their own process leave it off, so nothing ticks behind their back.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections

from clusters.adapters.mysql import ConnectOptions, Credentials, ServerError, connect
from clusters.credentials import admin_credentials, cluster_settings, connect_options
from clusters.models import Cluster

log = logging.getLogger(__name__)

IDLE_WAIT_TIMEOUT_SECONDS = 31536000  # the server's maximum: it must not close the idle connection itself
TRIGGER_DELAYS_SECONDS = (0.0, 0.25)


def enabled() -> bool:
    forced = getattr(settings, "DBPILOT_PRIMARY_WATCH", None)
    if forced is None:
        forced = os.environ.get("DBPILOT_PRIMARY_WATCH")
    if forced not in (None, ""):
        return str(forced).lower() in ("1", "true", "yes", "on")
    try:
        from celery._state import task_join_will_block  # True in prefork worker processes only
    except ImportError:
        return False
    return bool(task_join_will_block())


# The tick to run when a watched primary dies: monitoring's monitor_shard, handed over by the tick that
# asks for the watch (this module sits beside monitoring and never imports it).
_tick: Callable[[list[int]], object] | None = None


def _tick_now(cluster_id: int) -> None:
    """Tick the cluster now, and once more shortly after: a tick that was already running when the primary
    died (its probe came first) holds the single-flight lock, and the first attempt is then skipped."""
    try:
        for delay in TRIGGER_DELAYS_SECONDS:
            time.sleep(delay)
            if _tick is not None:
                _tick([cluster_id])
    except Exception:  # noqa: BLE001 - the regular ticks carry on
        log.exception("cluster %s: the tick triggered by the primary watch failed", cluster_id)
    finally:
        connections.close_all()


class PrimaryWatch:
    """One idle connection per watched primary, and the thread that waits on them."""

    def __init__(self):
        self._selector = selectors.DefaultSelector()
        self._watched: dict[int, tuple[str, object]] = {}  # cluster id -> (address, connection)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._selector.register(self._wake_reader, selectors.EVENT_READ, None)

    def watching(self, cluster_id: int, address: str) -> bool:
        with self._lock:
            current = self._watched.get(cluster_id)
        return current is not None and current[0] == address

    def watch(self, cluster_id: int, address: str, credentials: Credentials, options: ConnectOptions) -> bool:
        """Keep an idle connection to the cluster's primary (replacing one to a former primary)."""
        if self.watching(cluster_id, address):
            return True
        try:
            conn = connect(
                address,
                credentials,
                ConnectOptions(
                    connect_timeout=options.connect_timeout,
                    read_timeout=options.read_timeout,
                    tls=options.tls,
                    tls_ca=options.tls_ca,
                ),
            )
            with conn.cursor() as cursor:
                cursor.execute(f"SET SESSION wait_timeout={IDLE_WAIT_TIMEOUT_SECONDS}")
        except (ServerError, Exception) as exc:  # noqa: BLE001 - no watch: the ticks still find a crash
            log.debug("cluster %s: cannot watch %s: %s", cluster_id, address, exc)
            return False
        sock = getattr(conn, "_sock", None)
        if sock is None:
            conn.close()
            return False
        with self._lock:
            self._drop_locked(cluster_id)
            self._watched[cluster_id] = (address, conn)
            self._selector.register(sock, selectors.EVENT_READ, cluster_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="primary-watch", daemon=True)
                self._thread.start()
        self._wake_writer.send(b"w")
        return True

    def forget(self, cluster_id: int) -> None:
        with self._lock:
            self._drop_locked(cluster_id)

    def _drop_locked(self, cluster_id: int) -> None:
        current = self._watched.pop(cluster_id, None)
        if current is None:
            return
        conn = current[1]
        sock = getattr(conn, "_sock", None)
        if sock is not None:
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - it is gone already
            pass

    def _loop(self) -> None:
        while True:
            for key, _ in self._selector.select(timeout=5.0):
                if key.data is None:
                    self._wake_reader.recv(4096)
                    continue
                cluster_id = key.data
                with self._lock:
                    # An idle session receives nothing: readable means closed (or the server's farewell).
                    self._drop_locked(cluster_id)
                threading.Thread(
                    target=_tick_now, args=(cluster_id,), name=f"watch-tick-{cluster_id}", daemon=True
                ).start()


_WATCH: PrimaryWatch | None = None
_WATCH_LOCK = threading.Lock()


def primary_watch() -> PrimaryWatch:
    global _WATCH
    with _WATCH_LOCK:
        if _WATCH is None:
            _WATCH = PrimaryWatch()
        return _WATCH


_PENDING: set[int] = set()
_PENDING_LOCK = threading.Lock()
_CONNECTING = ThreadPoolExecutor(max_workers=4, thread_name_prefix="primary-watch-connect")


def after_healthy_tick(cluster_id: int, primary: str, *, tick: Callable[[list[int]], object]) -> None:
    """Called after a tick that saw the primary up: watch it (cheap once it is watched), and run `tick`
    (monitoring.monitor_shard) when it dies. The connection is opened in the background: a worker's first
    tick of many clusters must not wait for them."""
    global _tick
    if not enabled():
        return
    _tick = tick
    watch = primary_watch()
    if watch.watching(cluster_id, primary):
        return
    with _PENDING_LOCK:
        if cluster_id in _PENDING:
            return
        _PENDING.add(cluster_id)
    _CONNECTING.submit(_start_watching, cluster_id, primary)


def _start_watching(cluster_id: int, primary: str) -> None:
    try:
        cluster = Cluster.objects.filter(pk=cluster_id).first()
        if cluster is not None:
            primary_watch().watch(
                cluster_id, primary, admin_credentials(cluster), connect_options(cluster_settings(cluster))
            )
    except Exception:  # noqa: BLE001 - no watch: the ticks still find a crash
        log.debug("cluster %s: cannot start watching %s", cluster_id, primary, exc_info=True)
    finally:
        with _PENDING_LOCK:
            _PENDING.discard(cluster_id)
        connections.close_all()

"""The seam between HA jobs and routes: "the primary is going away" and "here is the new primary".

Jobs call `announce_primary_leaving` and `announce_new_primary`; those ask the routes provider for the
cluster's routes and apply the plan through each route's registered driver, in parallel. The default
provider lists the cluster's stored routes (clusters.services.routing.routes_for_job: Route rows bound
to everything their drivers need, installed at start by clusters.apps through `install_stored_routes`);
`set_routes_provider` replaces it (tests). A route object may carry an
`on_result(plan, result)` callable: it is called after the route was applied, to record the outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from clusters import hotstate
from clusters.routes.base import (
    PRIMARY_CHANGED,
    PRIMARY_LEAVING,
    RouteError,
    RoutePlan,
    RouteResult,
    generic_failure,
)
from clusters.routes.registry import driver_for

log = logging.getLogger(__name__)

RoutesProvider = Callable[[Any], Sequence[Any]]


def _no_routes(cluster: Any) -> list[Any]:
    return []


_stored_provider: RoutesProvider = _no_routes  # installed at start: clusters.apps


def _stored_routes(cluster: Any) -> list[Any]:
    """The cluster's Route rows, bound for their drivers; none for anything that is not a stored cluster."""
    if getattr(cluster, "pk", None) is None or not hasattr(cluster, "tenant_id"):
        return []
    return list(_stored_provider(cluster))


_provider: RoutesProvider = _stored_routes
LOCK_SECONDS = 30  # a sync never takes this long (drivers bound their calls): the lock expires by itself
LOCK_WAIT_SECONDS = 5.0
_EXECUTOR = ThreadPoolExecutor(max_workers=8, thread_name_prefix="route")


def install_stored_routes(provider: RoutesProvider) -> None:
    """Install, at start, the function that lists a stored cluster's routes bound for their drivers
    (clusters.services.routing.routes_for_job): routes never import the services above them."""
    global _stored_provider
    _stored_provider = provider


def set_routes_provider(provider: RoutesProvider | None) -> None:
    """Install the function that lists a cluster's routes (objects with a `kind`); None restores the
    stored routes."""
    global _provider
    _provider = provider or _stored_routes


def cluster_routes(cluster: Any) -> list[Any]:
    return list(_provider(cluster))


def _route_name(route: Any) -> str:
    return f"{getattr(route, 'kind', '?')}:{getattr(route, 'pk', None) or getattr(route, 'id', None) or '?'}"


def apply_route(route: Any, plan: RoutePlan) -> RouteResult:
    """Apply one route; every failure becomes a RouteResult with ok=False (never raised)."""
    started = time.monotonic()
    name = _route_name(route)
    driver_class = driver_for(getattr(route, "kind", ""))
    if driver_class is None:
        return RouteResult(
            name,
            False,
            f"no driver is registered for route kind {getattr(route, 'kind', None)!r}",
            permanent=True,
        )
    kind = getattr(route, "kind", "")
    try:
        result = driver_class(route).apply(plan)
    except RouteError as exc:
        # The whole story for the operator; for the tenant, only what RouteError.public allows.
        log.warning("route %s (cluster %s) failed: %s", name, getattr(route, "cluster_id", "?"), exc.message)
        result = RouteResult(
            name, False, exc.message if exc.public else generic_failure(kind), permanent=exc.permanent
        )
    except Exception:  # noqa: BLE001 - a broken driver is a stale route, not a failed job
        log.exception("route %s failed", name)
        result = RouteResult(name, False, generic_failure(kind))
    if not result.duration_ms:
        result = RouteResult(
            result.route,
            result.ok,
            result.detail,
            result.permanent,
            (time.monotonic() - started) * 1000,
            result.extra,
        )
    return result


@contextmanager
def routes_lock(cluster_id: int | None, wait: float | None = None) -> Iterator[bool]:
    """One sync of a cluster's routes at a time, so an older view applied by one never lands after a newer
    one applied by another (a job's routes step and a health sync racing). Waits up to `wait` seconds;
    yields whether the lock is held. Without Redis it yields True unlocked: an HA job must never depend
    on dbpilot's own store to tell its routes."""
    if cluster_id is None:
        yield True
        return
    wait = LOCK_WAIT_SECONDS if wait is None else wait
    lock = None
    try:
        lock = hotstate.routes_lock(cluster_id, LOCK_SECONDS, wait)
        held = bool(lock.acquire())
    except Exception:  # noqa: BLE001 - Redis down: go on without the lock
        log.warning("routes of cluster %s: no lock (Redis unavailable)", cluster_id, exc_info=True)
        lock, held = None, True
    try:
        yield held
    finally:
        if lock is not None and held:
            try:
                lock.release()
            except Exception:  # noqa: BLE001 - expired: someone else may hold it now
                pass


def apply_routes(cluster: Any, plan: RoutePlan) -> list[RouteResult]:
    routes = cluster_routes(cluster)
    if not routes:
        return []
    with routes_lock(getattr(cluster, "pk", None)) as held:
        if not held:
            log.warning(
                "routes of %s: another sync held the lock for %ss; applying anyway",
                cluster,
                LOCK_WAIT_SECONDS,
            )
        results = list(_EXECUTOR.map(lambda route: apply_route(route, plan), routes))
    for route, result in zip(routes, results, strict=True):
        on_result = getattr(route, "on_result", None)
        if callable(on_result):
            try:
                on_result(plan, result)
            except Exception:  # noqa: BLE001 - recording the outcome must not fail the job
                log.exception("could not record the result of route %s", result.route)
    return results


def announce_primary_leaving(
    cluster: Any, old_primary: str, *, replicas: Sequence[str] = (), epoch: int = 0, job_id: int | None = None
) -> list[RouteResult]:
    """Before writes stop on `old_primary`: routes stop sending writes to it (no new primary yet)."""
    plan = RoutePlan(str(cluster), PRIMARY_LEAVING, None, old_primary, tuple(replicas), epoch, job_id)
    return apply_routes(cluster, plan)


def announce_new_primary(
    cluster: Any,
    primary: str,
    *,
    old_primary: str | None = None,
    replicas: Sequence[str] = (),
    epoch: int = 0,
    job_id: int | None = None,
) -> list[RouteResult]:
    """Once `primary` takes writes: routes send writes to it and reads to `replicas`."""
    plan = RoutePlan(str(cluster), PRIMARY_CHANGED, primary, old_primary, tuple(replicas), epoch, job_id)
    return apply_routes(cluster, plan)

"""Routes: what sends clients to the primary (proxies, DNS, scripts), behind drivers in a registry.

This package holds the interface only (base class, registry, the job-facing notify functions); the
routing issue adds the drivers and the Route model and installs its provider with `set_routes_provider`.
"""
from clusters.routes.base import (
    PRIMARY_CHANGED,
    PRIMARY_LEAVING,
    RouteDriver,
    RouteError,
    RoutePlan,
    RouteResult,
)
from clusters.routes.notify import (
    announce_new_primary,
    announce_primary_leaving,
    apply_routes,
    cluster_routes,
    set_routes_provider,
)
from clusters.routes.registry import driver_for, register_driver, registered_kinds

__all__ = [
    "PRIMARY_CHANGED",
    "PRIMARY_LEAVING",
    "RouteDriver",
    "RouteError",
    "RoutePlan",
    "RouteResult",
    "announce_new_primary",
    "announce_primary_leaving",
    "apply_routes",
    "cluster_routes",
    "driver_for",
    "register_driver",
    "registered_kinds",
    "set_routes_provider",
]

"""Routes: what sends clients to the primary (proxies, DNS, scripts), behind drivers in a registry.

The interface (base class, registry, the job-facing notify functions) is imported here; the Route model
is clusters.routes.models, the drivers are registered by importing clusters.routes.drivers (HAProxy,
PowerDNS, script, ProxySQL, MaxScale, Consul), and clusters.services.routing registers, syncs and
records routes (docs/routing.md).
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

"""Importing this module registers every route driver (HAProxy, PowerDNS, script, ProxySQL, MaxScale, Consul)."""

from clusters.routes import consul, haproxy, maxscale, powerdns, proxysql, script  # noqa: F401
from clusters.routes.registry import registered_kinds

__all__ = ["registered_kinds"]

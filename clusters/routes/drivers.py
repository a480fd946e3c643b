"""Importing this module registers every route driver (HAProxy, PowerDNS, script, ProxySQL, MaxScale, Consul,
and the implicit pod-roles route of clusters provisioned on Kubernetes)."""

from clusters.routes import consul, haproxy, maxscale, pod_roles, powerdns, proxysql, script  # noqa: F401
from clusters.routes.registry import registered_kinds

__all__ = ["registered_kinds"]

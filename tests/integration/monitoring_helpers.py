"""Helpers for tests that register sandbox clusters with dbpilot and watch what monitoring says."""

from __future__ import annotations

from rest_framework.test import APIClient

from clusters.adapters.mysql import POOL
from clusters.models import Cluster, Finding
from clusters.services import registration
from tenants.services import create_tenant


def tenant_client(name: str = "acme", scope: str = "admin"):
    """A tenant with an admin team token; returns (APIClient authenticated with the token, created)."""
    created = create_tenant(name, "ops", f"admin@{name}.example", "a-long-password-1", scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.token}")
    return client, created


def registration_payload(sandbox, name: str = "main", nodes=None, **settings) -> dict:
    described = sandbox.describe()
    chosen = [n for n in described["nodes"] if nodes is None or n["node"] in nodes]
    return {
        "name": name,
        "servers": [{"host": n["host"], "port": n["port"]} for n in chosen],
        "credentials": described["credentials"]["admin"],
        "replication_credentials": described["credentials"]["replication"],
        "settings": settings,
    }


def register(team, sandbox, name: str = "main", nodes=None, **settings) -> Cluster:
    """Register through the service (what the API calls), checking servers answer."""
    request = registration.parse_request(team.tenant, registration_payload(sandbox, name, nodes, **settings))
    probes = registration.check_servers_answer(request)
    return registration.register_cluster(team, request, probes, requested_by="test")


def open_codes(cluster: Cluster) -> set[tuple[str, str | None]]:
    return {
        (f.code, f.server.address if f.server else None)
        for f in Finding.objects.filter(cluster=cluster, resolved_at__isnull=True).select_related("server")
    }


def forget_connections(sandbox) -> None:
    for node in sandbox.nodes:
        POOL.discard_address(f"{sandbox.host(node)}:{sandbox.port(node)}")

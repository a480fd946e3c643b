"""The proxies' external health checks: the cluster's health key, and the answer for one server.

`GET /api/v1/health/clusters/{id}/servers/{host}:{port}/primary` (or `/replica`) is called by HAProxy's
`http-check` every second or so, with the cluster's health key in `X-Dbpilot-Health-Key` — never a team
token: a key that can only read up/down of one cluster may sit in a proxy's environment. Only a peppered
HMAC of the key is stored (Cluster.health_key_hmac); a cluster admin rotates it and sees the new key once.

A missing or wrong key and an unknown cluster get the same 404, after the same constant-time comparison,
so the endpoint tells nobody without the key whether a cluster exists. The answer reads one row and the
monitoring snapshot in Redis (clusters.routes.health decides): no database server is probed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime

from django.conf import settings

from clusters import hotstate
from clusters.credentials import cluster_settings
from clusters.domain.addresses import AddressError, format_address, parse_address
from clusters.events import record_event
from clusters.models import Cluster
from clusters.routes.health import HealthAnswer, primary_answer, replica_answer

ROLES = ("primary", "replica")
KEY_PATTERN = re.compile(r"\A[A-Za-z0-9_-]{20,128}\Z")
_NO_KEY = "0" * 64  # compared against when the cluster does not exist or has no key: same work, no match


def key_hmac(key: str) -> str:
    return hmac.new(
        settings.DBPILOT_TOKEN_PEPPER.encode(), f"health-key:{key}".encode(), hashlib.sha256
    ).hexdigest()


def rotate_health_key(cluster: Cluster, *, requested_by: str) -> str:
    """A new health key for the cluster (the old one stops working at once). Returned once, never stored."""
    key = secrets.token_urlsafe(32)
    Cluster.objects.filter(pk=cluster.pk).update(health_key_hmac=key_hmac(key))
    record_event(cluster.pk, "health_key_rotated", f"Health check key rotated by {requested_by}")
    return key


def _authorized(cluster: Cluster | None, key: str | None) -> bool:
    stored = cluster.health_key_hmac if cluster is not None and cluster.health_key_hmac else _NO_KEY
    given = key_hmac(key) if isinstance(key, str) and KEY_PATTERN.fullmatch(key) else key_hmac("")
    return hmac.compare_digest(given, stored) and stored != _NO_KEY


def _find_server(cluster: Cluster, text: str):
    servers = list(cluster.servers.all())
    if text.isdigit() and len(text) <= 18:  # a server id (names of IPv6 servers in the generated config)
        return next((s for s in servers if s.pk == int(text)), None)
    try:
        wanted = parse_address(text)
    except AddressError:
        return None
    spelled = format_address(wanted.host, wanted.port)
    for server in servers:
        try:
            parsed = parse_address(server.address)
        except AddressError:
            continue
        if format_address(parsed.host, parsed.port) == spelled:
            return server
    return None


def _observed_before(snapshot: dict | None, moment: datetime) -> bool:
    try:
        observed = datetime.fromisoformat((snapshot or {}).get("updated_at") or "")
    except (TypeError, ValueError):
        return True
    if observed.tzinfo is None:
        observed = observed.replace(tzinfo=UTC)
    return observed < moment


def health_answer(
    cluster_id: int, server_text: str, role: str, key: str | None
) -> tuple[HealthAnswer | None, str]:
    """(answer, address) for an authorized request about a known server; (None, "") means 404."""
    cluster = Cluster.objects.select_related("primary").filter(pk=cluster_id).first()
    if not _authorized(cluster, key) or role not in ROLES:
        return None, ""
    server = _find_server(cluster, server_text)
    if server is None:
        return None, ""
    snapshot = hotstate.read_topology(cluster.pk)
    recorded = cluster.primary.address if cluster.primary_id else None
    # A job records its new primary (and bumps updated_at) up to a tick before monitoring observes it.
    recorded_is_newer = bool(recorded) and _observed_before(snapshot, cluster.updated_at)
    if role == "primary":
        return primary_answer(server.address, snapshot, recorded, recorded_is_newer), server.address
    max_delay = cluster_settings(cluster).max_replica_delay_seconds
    return replica_answer(
        server.address, snapshot, recorded, recorded_is_newer, server.maintenance, max_delay
    ), server.address

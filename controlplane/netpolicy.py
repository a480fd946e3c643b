"""The operator's network allowlists: every address dbpilot dials on a tenant's behalf passes here.

A host name is resolved once; every resolved address must be allowed, and the connection then goes to
the pinned address that passed (no second lookup an attacker could race).
"""
from __future__ import annotations

import socket
from pathlib import Path

from django.conf import settings

from clusters.domain.addresses import AddressError, ip_allowed, validate_host


class NotAllowed(ValueError):
    """The address or path is outside what the platform operator allows."""


def pin_host(host: str) -> str:
    """Return the IP address to connect to for `host`, or raise NotAllowed/AddressError."""
    host = validate_host(host)
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise AddressError(f"host {host!r} does not resolve") from None
    ips = sorted({info[4][0] for info in infos})
    if not ips:
        raise AddressError(f"host {host!r} does not resolve")
    for ip in ips:
        if not ip_allowed(ip, settings.DBPILOT_ALLOWED_NETWORKS):
            raise NotAllowed(
                f"{host} ({ip}) is outside the networks this dbpilot may connect to "
                "(DBPILOT_ALLOWED_NETWORKS); ask the platform operator"
            )
    return ips[0]


def check_socket_path(path: str) -> Path:
    """A unix socket path must lie inside one of DBPILOT_ALLOWED_SOCKET_DIRS (after resolving links and ..)."""
    resolved = Path(path).resolve()
    for allowed in settings.DBPILOT_ALLOWED_SOCKET_DIRS:
        base = allowed.resolve()
        if resolved == base or base in resolved.parents:
            return resolved
    raise NotAllowed(f"socket {path} is outside the directories this dbpilot may use (DBPILOT_ALLOWED_SOCKET_DIRS)")

"""The operator's network allowlists: every address dbpilot dials on a tenant's behalf passes here.

A host name is resolved once; every resolved address must be allowed, and the connection then goes to
the pinned address that passed (no second lookup an attacker could race). The pinned address is in its
canonical form (clusters.domain.addresses.canonical_ip), which is what ownership compares.

dbpilot's own services (its web port, Redis, the control-plane database) are never a tenant's target:
`check_not_own_service` refuses them, whatever the spelling of their address.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from clusters.domain.addresses import AddressError, canonical_ip, ip_allowed, validate_host


class NotAllowed(ValueError):
    """The address or path is outside what the platform operator allows."""


def resolve_all(host: str, port: int | None = None) -> list[str]:
    """Every address `host` stands for, canonical and sorted (a literal stands for itself); AddressError
    when it does not resolve. Callers check each one: one bad answer refuses the host."""
    literal = canonical_ip(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise AddressError(f"host {host!r} does not resolve") from None
    ips = sorted({canonical_ip(str(info[4][0])) or str(info[4][0]) for info in infos})
    if not ips:
        raise AddressError(f"host {host!r} does not resolve")
    return ips


def pin_host(host: str) -> str:
    """Return the IP address to connect to for `host`, or raise NotAllowed/AddressError."""
    host = validate_host(host)
    ips = resolve_all(host)
    for ip in ips:
        if not ip_allowed(ip, settings.DBPILOT_ALLOWED_NETWORKS):
            raise NotAllowed(
                f"{host} ({ip}) is outside the networks this dbpilot may connect to "
                "(DBPILOT_ALLOWED_NETWORKS); ask the platform operator"
            )
    return ips[0]


def pin_webhook_host(host: str, port: int) -> str:
    """The address to POST an alert to: every address `host` resolves to must be public (when the operator
    allows `public`) or inside DBPILOT_ALLOWED_WEBHOOK_NETWORKS, and none may be one of dbpilot's own
    services. Raises NotAllowed or AddressError; the connection goes to the address returned."""
    ips = resolve_all(host, port)
    for ip in ips:
        public = settings.DBPILOT_WEBHOOK_PUBLIC_ALLOWED and ipaddress.ip_address(ip).is_global
        if not public and not ip_allowed(ip, settings.DBPILOT_ALLOWED_WEBHOOK_NETWORKS):
            raise NotAllowed(
                f"{host} resolves to {ip}, outside the networks alerts may be sent to "
                "(DBPILOT_ALLOWED_WEBHOOK_NETWORKS); ask the platform operator"
            )
        if is_own_service(ip, port):
            raise NotAllowed(f"{host}:{port} ({ip}) is one of dbpilot's own services")
    return ips[0]


def check_socket_path(path: str) -> Path:
    """A unix socket path must lie inside one of DBPILOT_ALLOWED_SOCKET_DIRS (after resolving links and ..)."""
    resolved = Path(path).resolve()
    for allowed in settings.DBPILOT_ALLOWED_SOCKET_DIRS:
        base = allowed.resolve()
        if resolved == base or base in resolved.parents:
            return resolved
    raise NotAllowed(
        f"socket {path} is outside the directories this dbpilot may use (DBPILOT_ALLOWED_SOCKET_DIRS)"
    )


def _service_address(url: str, default_port: int) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or default_port
    except ValueError:
        return None
    if not host:
        return None
    return host, port


def own_services() -> list[tuple[str, int]]:
    """(host, port) of dbpilot's own services: Redis, the control-plane database, the web ports, and any
    extra DBPILOT_RESERVED_ENDPOINTS."""
    found = []
    redis = _service_address(getattr(settings, "REDIS_URL", ""), 6379)
    if redis:
        found.append(redis)
    database = settings.DATABASES.get("default", {})
    if database.get("HOST"):
        found.append((database["HOST"], int(database.get("PORT") or 5432)))
    for port in getattr(settings, "DBPILOT_WEB_PORTS", ()):
        found.append(("127.0.0.1", int(port)))
    for text in getattr(settings, "DBPILOT_RESERVED_ENDPOINTS", ()):
        host, _, port = text.rpartition(":")
        if host and port.isascii() and port.isdigit():
            found.append((host.strip("[]"), int(port)))
    return found


def _local(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return address.is_loopback or address.is_unspecified


def is_own_service(ip: str, port: int) -> bool:
    """Whether ip:port (a pinned, canonical address) reaches one of dbpilot's own services. A service on
    this host answers on the whole loopback range when it listens on every address, so any loopback
    address with a service's port counts when the service itself is local."""
    for host, service_port in own_services():
        if service_port != port:
            continue
        service_ip = canonical_ip(host)
        if service_ip is None:
            try:
                service_ip = canonical_ip(socket.gethostbyname(host))
            except (OSError, UnicodeError):
                continue
        if service_ip == ip or (_local(service_ip) and _local(ip)):
            return True
    return False

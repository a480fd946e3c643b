"""The PowerDNS driver: the writer name answers the primary, the reader name the healthy replicas.

One `PATCH /api/v1/servers/{server_id}/zones/{zone}` per sync (PowerDNS HTTP API, `X-API-Key`): the
write record becomes an A (IPv4) or AAAA (IPv6) record of the primary, or a CNAME when the primary is
known by a host name, with the other types at that name deleted in the same request (a CNAME cannot
coexist with them); the read record becomes the A/AAAA set of the readers. With caches off, the very next
query answers the new primary (mariadb-notes.md). While a primary is only leaving, DNS is left as it is:
there is nothing better to answer until the new primary is known.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import quote

from clusters.domain.addresses import parse_address
from clusters.routes.base import PRIMARY_CHANGED, RouteDriver, RouteError, RoutePlan, RouteResult
from clusters.routes.bound import BoundRoute
from clusters.routes.http import PinnedHttp
from clusters.routes.registry import register_driver
from clusters.routes.spec import is_ip

RECORD_TYPES = ("A", "AAAA", "CNAME")


def _record_type(host: str) -> str:
    if is_ip(host):
        return "AAAA" if ":" in host else "A"
    return "CNAME"


def _ips(host: str) -> list[str]:
    if is_ip(host):
        return [host]
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})
    except socket.gaierror:
        raise RouteError(f"{host} does not resolve: a read record needs addresses", public=True) from None


def rrsets_for(name: str, hosts: list[str], ttl: int, *, single: bool) -> list[dict]:
    """REPLACE the record types `hosts` need at `name`, DELETE the others. `single` (the writer): one
    host, which may be a host name (CNAME); otherwise A/AAAA sets of every host's addresses."""
    wanted: dict[str, list[str]] = {}
    if single:
        host = hosts[0]
        kind = _record_type(host)
        wanted[kind] = [host if kind != "CNAME" else host.rstrip(".") + "."]
    else:
        for host in hosts:
            for ip in _ips(host):
                wanted.setdefault(_record_type(ip), []).append(ip)
    rrsets = []
    for kind in RECORD_TYPES:
        if kind in wanted:
            rrsets.append(
                {
                    "name": name,
                    "type": kind,
                    "ttl": ttl,
                    "changetype": "REPLACE",
                    "records": [{"content": c, "disabled": False} for c in sorted(set(wanted[kind]))],
                }
            )
        else:
            rrsets.append({"name": name, "type": kind, "changetype": "DELETE"})
    return rrsets


def _error_text(answer) -> str:
    body = answer.json()
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])[:300]
    return answer.text()


@register_driver("powerdns")
class PowerDnsDriver(RouteDriver):
    """`api_url`, `api_key` (secret), `server_id`, `zone`, `write_record`, optional `read_record`, `ttl`."""

    route: BoundRoute

    def apply(self, plan: RoutePlan) -> RouteResult:
        started = time.monotonic()
        settings = self.route.settings
        if plan.phase != PRIMARY_CHANGED or not plan.primary:
            return RouteResult(self.name, True, "DNS left as it is until the new primary is known")
        zone, ttl = settings["zone"], int(settings.get("ttl") or 5)
        primary_host = parse_address(plan.primary).host
        rrsets = rrsets_for(settings["write_record"], [primary_host], ttl, single=True)
        readers: list[str] = []
        if settings.get("read_record"):
            readers = [parse_address(a).host for a in self.route.read_members(plan)]
            rrsets += rrsets_for(settings["read_record"], readers, ttl, single=False)
        client = PinnedHttp(
            settings["api_url"], "PowerDNS API", headers={"X-API-Key": self.route.secrets.get("api_key", "")}
        )
        path = f"/api/v1/servers/{quote(settings.get('server_id') or 'localhost', safe='')}/zones/{quote(zone, safe='.')}"
        try:
            answer = client.request("PATCH", path, body={"rrsets": rrsets})
        finally:
            client.close()
        if answer.status in (401, 403):
            raise RouteError(
                f"PowerDNS API at {settings['api_url']} refused the API key ({answer.status}): "
                "set the route's api_key",
                permanent=True,
                public=True,
            )
        if answer.status == 404:
            raise RouteError(
                f"PowerDNS has no zone {zone} on server {settings.get('server_id') or 'localhost'} (404)",
                permanent=True,
                public=True,
            )
        if answer.status == 422:
            raise RouteError(f"PowerDNS rejected the change to {zone}: {_error_text(answer)}", permanent=True)
        if answer.status != 204 and not 200 <= answer.status < 300:
            raise RouteError(f"PowerDNS API answered {answer.status}: {_error_text(answer)}")
        detail = f"{settings['write_record']} -> {primary_host}"
        if settings.get("read_record"):
            detail += f"; {settings['read_record']} -> {', '.join(readers) or 'nothing'}"
        return RouteResult(
            self.name, True, f"{detail} (ttl {ttl})", duration_ms=(time.monotonic() - started) * 1000
        )

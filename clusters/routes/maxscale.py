"""The MaxScale driver: server states through MaxScale's REST API (HTTP basic auth, `/v1/servers`).

MaxScale's servers are matched to the cluster's by address and port (`GET /v1/servers`). When the primary
is leaving, its server is put in `maintenance` (`PUT /v1/servers/{id}/set?state=maintenance`), so
MaxScale opens no new session to it. Once the new primary is announced, maintenance is cleared on the
cluster servers dbpilot put there, and for servers no MaxScale monitor watches (their roles are
MaxScale's to be told) `master` is set on the primary and `slave` on the readers (`.../set?state=...`,
`.../clear?state=...`). Servers a monitor watches get their roles from the monitor (which must not run
its own automatic failover next to dbpilot's: `auto_failover=false`).

NOT verified against a live MaxScale (none can be installed here): calls follow MaxScale's documented REST
API and are tested against an in-process HTTP double (tests/integration/test_routing_doubles.py).
"""

from __future__ import annotations

import time
from urllib.parse import quote

from clusters.domain.addresses import AddressError, format_address
from clusters.routes.base import PRIMARY_CHANGED, RouteDriver, RouteError, RoutePlan, RouteResult
from clusters.routes.bound import BoundRoute, canonical
from clusters.routes.http import PinnedHttp
from clusters.routes.registry import register_driver
from clusters.routes.spec import NAME


def _servers(client: PinnedHttp) -> list[dict]:
    answer = client.request("GET", "/v1/servers")
    if answer.status == 401:
        raise RouteError("MaxScale refused the user name or password (401)", permanent=True, public=True)
    if answer.status != 200 or not isinstance(answer.json(), dict):
        raise RouteError(f"MaxScale GET /v1/servers answered {answer.status}: {answer.text()}")
    return [s for s in answer.json().get("data") or [] if isinstance(s, dict)]


def _address(server: dict) -> str | None:
    parameters = (server.get("attributes") or {}).get("parameters") or {}
    try:
        return canonical(format_address(str(parameters["address"]), int(parameters["port"])))
    except (KeyError, TypeError, ValueError, AddressError):
        return None


def _states(server: dict) -> set[str]:
    return {
        s.strip().lower()
        for s in str((server.get("attributes") or {}).get("state") or "").split(",")
        if s.strip()
    }


def _monitored(server: dict) -> bool:
    monitors = ((server.get("relationships") or {}).get("monitors") or {}).get("data")
    return bool(monitors)


@register_driver("maxscale")
class MaxscaleDriver(RouteDriver):
    """`api_url`, `user`, `password` (secret)."""

    route: BoundRoute

    def apply(self, plan: RoutePlan) -> RouteResult:
        started = time.monotonic()
        settings = self.route.settings
        client = PinnedHttp(
            settings["api_url"],
            "MaxScale REST API",
            basic_auth=(settings["user"], self.route.secrets.get("password", "")),
        )
        try:
            return self._apply(client, plan, started)
        finally:
            client.close()

    def _apply(self, client: PinnedHttp, plan: RoutePlan, started: float) -> RouteResult:
        ours = {canonical(s.address) for s in self.route.servers}
        servers = {}
        for server in _servers(client):
            address = _address(server)
            if address in ours:
                if not NAME.fullmatch(str(server.get("id") or "")):
                    raise RouteError("a MaxScale server id is not a plain name", permanent=True, public=True)
                servers[address] = server
        if not servers:
            raise RouteError(
                f"no MaxScale server matches a server of cluster {self.route.cluster}",
                permanent=True,
                public=True,
            )
        changes: list[tuple[str, str, str]] = []  # (server id, set|clear, state)
        old = canonical(plan.old_primary) if plan.old_primary else None
        if plan.phase != PRIMARY_CHANGED or not plan.primary:
            if old in servers and "maintenance" not in _states(servers[old]):
                changes.append((servers[old]["id"], "set", "maintenance"))
        else:
            primary = canonical(plan.primary)
            if primary not in servers:
                raise RouteError(
                    f"the primary {plan.primary} has no MaxScale server", permanent=True, public=True
                )
            readers = {canonical(a) for a in self.route.read_members(plan)}
            for address, server in sorted(servers.items()):
                states = _states(server)
                if "maintenance" in states and (address == old or address == primary or address in readers):
                    changes.append((server["id"], "clear", "maintenance"))
                if _monitored(server):
                    continue
                if address == primary:
                    if "slave" in states:
                        changes.append((server["id"], "clear", "slave"))
                    if "master" not in states:
                        changes.append((server["id"], "set", "master"))
                else:
                    if "master" in states:
                        changes.append((server["id"], "clear", "master"))
                    if address in readers and "slave" not in states:
                        changes.append((server["id"], "set", "slave"))
        for server_id, verb, state in changes:
            answer = client.request(
                "PUT", f"/v1/servers/{quote(server_id, safe='')}/{verb}", query={"state": state}
            )
            if answer.status == 401:
                raise RouteError(
                    "MaxScale refused the user name or password (401)", permanent=True, public=True
                )
            if answer.status not in (200, 204):
                errors = (answer.json() or {}).get("errors") if isinstance(answer.json(), dict) else None
                why = errors[0].get("detail") if errors and isinstance(errors[0], dict) else answer.text()
                raise RouteError(
                    f"MaxScale refused to {verb} {state} on {server_id} ({answer.status}): {why}"
                )
        detail = ", ".join(f"{verb} {state} on {sid}" for sid, verb, state in changes) or "already as wanted"
        return RouteResult(self.name, True, detail, duration_ms=(time.monotonic() - started) * 1000)

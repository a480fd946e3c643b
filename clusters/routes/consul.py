"""The Consul driver: the primary in the KV store, and optionally the servers in the service catalog.

`PUT /v1/kv/<key_prefix>/<tenant>/<cluster>/primary` with the primary's `host:port` as the value, and
`.../replicas` with a JSON list of the readers (consul-template, or any watcher, follows them); with
`service`, each cluster server is registered as an external service instance
(`PUT /v1/catalog/register`, node `node`) tagged `primary` or `replica`, so `primary.<service>.service.consul`
answers the primary. The ACL token, when set, goes in `X-Consul-Token`. While a primary is only leaving,
nothing changes (there is nothing better to publish until the new primary is known).

NOT verified against a live Consul (none can be installed here): calls follow Consul's documented HTTP
API and are tested against an in-process HTTP double (tests/integration/test_routing_doubles.py).
"""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import quote

from clusters.domain.addresses import parse_address
from clusters.routes.base import PRIMARY_CHANGED, RouteDriver, RouteError, RoutePlan, RouteResult
from clusters.routes.bound import BoundRoute, canonical
from clusters.routes.http import PinnedHttp
from clusters.routes.registry import register_driver

log = logging.getLogger(__name__)


def kv_path(prefix: str, tenant: str, cluster: str, leaf: str) -> str:
    parts = [*prefix.strip("/").split("/"), tenant, cluster, leaf]
    return "/v1/kv/" + "/".join(quote(p, safe="") for p in parts if p)


@register_driver("consul")
class ConsulDriver(RouteDriver):
    """`api_url`, optional `token` (secret), `key_prefix`, optional `service` and `node`."""

    route: BoundRoute

    def apply(self, plan: RoutePlan) -> RouteResult:
        started = time.monotonic()
        if plan.phase != PRIMARY_CHANGED or not plan.primary:
            return RouteResult(self.name, True, "Consul left as it is until the new primary is known")
        settings = self.route.settings
        token = self.route.secrets.get("token")
        client = PinnedHttp(
            settings["api_url"], "Consul API", headers={"X-Consul-Token": token} if token else None
        )
        readers = self.route.read_members(plan)
        prefix = settings.get("key_prefix") or "dbpilot"
        try:
            self._put(
                client,
                kv_path(prefix, self.route.tenant, self.route.cluster_name, "primary"),
                canonical(plan.primary).encode(),
            )
            self._put(
                client,
                kv_path(prefix, self.route.tenant, self.route.cluster_name, "replicas"),
                json.dumps(readers).encode(),
            )
            service = settings.get("service")
            if service:
                for server in self.route.servers:
                    role = (
                        "primary"
                        if canonical(server.address) == canonical(plan.primary)
                        else ("replica" if server.address in readers else "standby")
                    )
                    host, port = parse_address(server.address).host, server.port
                    body = {
                        "Node": settings.get("node") or "dbpilot-external",
                        "Address": host,
                        "NodeMeta": {"external-node": "true"},
                        "Service": {
                            "ID": f"{service}-{server.id}",
                            "Service": service,
                            "Tags": [role],
                            "Address": host,
                            "Port": port,
                        },
                    }
                    self._put(client, "/v1/catalog/register", json.dumps(body).encode())
        finally:
            client.close()
        detail = f"{prefix}/{self.route.cluster}/primary = {canonical(plan.primary)}; replicas = {readers}"
        if settings.get("service"):
            detail += f"; service {settings['service']} registered"
        return RouteResult(self.name, True, detail, duration_ms=(time.monotonic() - started) * 1000)

    def _put(self, client: PinnedHttp, path: str, payload: bytes) -> None:
        answer = client.request("PUT", path, raw=payload)
        if answer.status in (401, 403):
            log.warning("Consul refused the ACL token (%s): %s", answer.status, answer.text(150))
            raise RouteError(f"Consul refused the ACL token ({answer.status})", permanent=True, public=True)
        if answer.status != 200:
            raise RouteError(f"Consul PUT {path} answered {answer.status}: {answer.text(150)}")
        if path.startswith("/v1/kv/") and answer.text().strip() != "true":
            raise RouteError(f"Consul did not store {path} (answered {answer.text(50)!r})")

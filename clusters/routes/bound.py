"""What a route driver is given: a route with everything it needs already read (plain Python).

clusters.services.routing builds a `BoundRoute` from a Route row, its cluster's servers, the decrypted
secrets and the latest observation, so a driver never touches the control-plane database and can run in
any thread. `on_result` (set by the service) records the outcome on the Route row afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clusters.domain.addresses import format_address, parse_address
from clusters.routes.base import RoutePlan, RouteResult
from clusters.routes.health import read_members


def canonical(address: str) -> str:
    """`host:port` in one spelling (IPs canonical, names lower case), so addresses compare equal."""
    parsed = parse_address(address)
    return format_address(parsed.host, parsed.port)


@dataclass(frozen=True)
class ClusterServer:
    id: int
    host: str
    port: int
    maintenance: bool = False

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)


@dataclass
class BoundRoute:
    id: int
    kind: str
    name: str
    tenant: str
    cluster_name: str
    cluster_id: int
    settings: dict[str, Any]
    secrets: dict[str, str]
    servers: tuple[ClusterServer, ...]
    avoid_for_reads: frozenset[str] = frozenset()  # observed unhealthy or in maintenance
    job_kinds: dict[int, str] = field(default_factory=dict)  # the cluster's running jobs, id -> kind
    proxy_state: dict[str, Any] = field(default_factory=dict)  # what the driver saw last time (HAProxy start)
    on_result: Callable[[RoutePlan, RouteResult], None] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def pk(self) -> int:
        return self.id

    @property
    def cluster(self) -> str:
        return f"{self.tenant}/{self.cluster_name}"

    def server(self, address: str | None) -> ClusterServer | None:
        if not address:
            return None
        try:
            wanted = canonical(address)
        except ValueError:
            return None
        return next((s for s in self.servers if canonical(s.address) == wanted), None)

    def read_members(self, plan: RoutePlan) -> list[str]:
        """The servers reads should go to under `plan`: its replicas that are not to be avoided, else the
        primary. During PRIMARY_LEAVING (no primary) the replicas alone."""
        return read_members(plan.primary, plan.replicas, self.avoid_for_reads)

"""What a route driver is: a small base class that applies a route plan, and the error it raises.

A route is whatever sends clients to the primary (an HAProxy backend, a DNS record, a script, a proxy's
hostgroup). A job tells every route of the cluster twice: before the primary stops taking writes
(`PRIMARY_LEAVING`: stop sending writes to it) and once the new primary is writable (`PRIMARY_CHANGED`).
Drivers translate that plan into their own calls; a failing route never fails the HA job (design.md: the
job succeeds with `routes_ok: false` and says which route is stale).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PRIMARY_LEAVING = "primary_leaving"
PRIMARY_CHANGED = "primary_changed"
PHASES = (PRIMARY_LEAVING, PRIMARY_CHANGED)


@dataclass(frozen=True)
class RoutePlan:
    """What the routes must now say. `primary` is the server to send writes to (None while there is
    none: during a switchover's freeze); `replicas` the servers for reads; `epoch` the cluster's."""

    cluster: str  # tenant/name
    phase: str
    primary: str | None
    old_primary: str | None
    replicas: tuple[str, ...] = ()
    epoch: int = 0
    job_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RouteResult:
    route: str  # a readable name of the route (kind and id)
    ok: bool
    detail: str = ""
    permanent: bool = False  # the route is misconfigured: retrying will not help
    duration_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RouteError(Exception):
    """A route could not be updated. `permanent` when retrying cannot help (bad configuration).

    `message` goes to the operator's log. The tenant sees it only when `public` (the driver reached the
    service it expected and the text echoes nothing it answered); otherwise one generic failure, so a route
    cannot tell refused, timed out, reset, TLS and wrong-protocol apart, nor read another service's answers.
    """

    def __init__(self, message: str, permanent: bool = False, *, public: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.public = public


def generic_failure(kind: str) -> str:
    """What a tenant is told of a failed sync whose details stay in the operator's log."""
    return (
        f"the {kind} endpoint is not reachable or did not answer as expected; "
        "the platform operator's log has the details"
    )


class RouteDriver:
    """Base class of route drivers: `kind` names it in the registry; `apply` does the work.

    A driver is built per route (`driver(route)`: the routing issue's Route row, or any object with the
    driver's fields) and must bound its own network calls with timeouts. `apply` returns a RouteResult or
    raises RouteError; anything else raised is reported as a failed route, never as a failed job.
    """

    kind: str = ""

    def __init__(self, route: Any):
        self.route = route

    @property
    def name(self) -> str:
        return f"{self.kind}:{getattr(self.route, 'pk', None) or getattr(self.route, 'id', None) or '?'}"

    def apply(self, plan: RoutePlan) -> RouteResult:
        raise NotImplementedError

"""The pod-roles route of a cluster provisioned on Kubernetes: the `dbpilot.io/role` label of its pods
follows the primary, so the writer Service (which selects `dbpilot.io/role=primary`) sends clients to it.

It is not a route anyone registers: clusters.services.routing adds it to the routes of every cluster whose
provider is `kubernetes`, so HA jobs tell it like any route (the primary leaving: every pod labelled
replica, the writer Service selects none; a new primary: its pod labelled primary), and its outcome is in
the job's routes step. The labelling itself is the provider's (KubernetesProvider.roles_changed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clusters.providers.base import ProviderError
from clusters.providers.registry import get_provider
from clusters.routes.base import PRIMARY_CHANGED, RouteDriver, RouteError, RoutePlan, RouteResult
from clusters.routes.registry import register_driver

KIND = "kubernetes_pod_roles"


@dataclass(frozen=True)
class PodRolesRoute:
    """The implicit route: the cluster's servers, address -> provider instance."""

    cluster_id: int
    instances: dict[str, str] = field(default_factory=dict)
    provider: str = "kubernetes"
    kind: str = KIND
    pk: str = "pods"


@register_driver(KIND)
class PodRolesDriver(RouteDriver):
    route: PodRolesRoute

    def apply(self, plan: RoutePlan) -> RouteResult:
        primary = self.route.instances.get(plan.primary or "") if plan.phase == PRIMARY_CHANGED else None
        try:
            changed = get_provider(self.route.provider).roles_changed(
                primary, list(self.route.instances.values())
            )
        except ProviderError as exc:
            raise RouteError(f"labelling the pods: {exc}", permanent=exc.permanent) from None
        role = f"{primary} primary" if primary else "no primary (every pod labelled replica)"
        return RouteResult(
            self.name,
            True,
            f"pod roles: {role}; "
            + (f"relabelled {', '.join(changed)}" if changed else "labels already right"),
            extra={"relabelled": changed},
        )

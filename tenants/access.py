"""The one chokepoint for tenant permissions.

A caller (a person, or a team token acting as its team's service account) may hold a permission on a
cluster when some team it belongs to was granted that permission on the cluster (a guardian object
permission on the team's group) and the caller's role in that team allows it. A token is further
bounded by its scope and its optional cluster restriction. Nobody gets model-level permissions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_group

from tenants.models import ApiToken, Membership, Role, Team, TenantAdmin

VIEW = "view_cluster"
OPERATE = "operate_cluster"
ADMIN = "admin_cluster"
CLUSTER_PERMISSIONS = (VIEW, OPERATE, ADMIN)

# What each team role or token scope allows.
ALLOWED_BY_ROLE = {
    Role.VIEWER: {VIEW},
    Role.OPERATOR: {VIEW, OPERATE},
    Role.ADMIN: {VIEW, OPERATE, ADMIN},
}


@dataclass
class Actor:
    """Who is calling: a user, possibly acting through a team token."""

    user: object
    token: ApiToken | None = None
    teams: dict[int, str] = field(default_factory=dict)  # team id -> role or scope

    @property
    def is_authenticated(self) -> bool:
        return bool(getattr(self.user, "is_authenticated", False))

    @property
    def is_operator(self) -> bool:
        """A platform operator (Django superuser); never a token."""
        return self.token is None and bool(getattr(self.user, "is_superuser", False))

    def label(self) -> str:
        if self.token is not None:
            return f"token:{self.token.key} (team {self.token.team.name})"
        return f"user:{getattr(self.user, 'username', '?')}"

    def tenant_ids(self) -> set[int]:
        return set(Team.objects.filter(id__in=self.teams).values_list("tenant_id", flat=True))

    def admin_tenant_ids(self) -> set[int]:
        if self.token is not None:
            return set()
        return set(TenantAdmin.objects.filter(user=self.user).values_list("tenant_id", flat=True))


def actor_for(user, token: ApiToken | None = None) -> Actor:
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated:
        return Actor(user=AnonymousUser())
    if token is not None:
        return Actor(user=user, token=token, teams={token.team_id: token.scope})
    roles = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
    return Actor(user=user, teams=roles)


def actor_from_request(request) -> Actor:
    cached = getattr(request, "_dbpilot_actor", None)
    if cached is not None:
        return cached
    token = request.auth if isinstance(getattr(request, "auth", None), ApiToken) else None
    actor = actor_for(request.user, token)
    request._dbpilot_actor = actor
    return actor


def teams_allowing(actor: Actor, perm: str) -> list[Team]:
    team_ids = [tid for tid, role in actor.teams.items() if perm in ALLOWED_BY_ROLE.get(role, set())]
    return list(Team.objects.filter(id__in=team_ids).select_related("group"))


def clusters_for(actor: Actor, perm: str = VIEW) -> QuerySet:
    """Every cluster on which the actor holds `perm`."""
    from clusters.models import Cluster

    if not actor.is_authenticated:
        return Cluster.objects.none()
    result = Cluster.objects.none()
    for team in teams_allowing(actor, perm):
        result = result | get_objects_for_group(team.group, f"clusters.{perm}", klass=Cluster, accept_global_perms=False)
    if actor.token is not None and actor.token.clusters.exists():
        result = result.filter(id__in=actor.token.clusters.values("id"))
    return Cluster.objects.filter(id__in=result.values("id"))


def has_cluster_perm(actor: Actor, cluster, perm: str) -> bool:
    return clusters_for(actor, perm).filter(pk=cluster.pk).exists()


def creation_team(actor: Actor, team_id: int | None = None) -> Team | None:
    """The team on whose behalf the actor creates a cluster: one where the actor is admin (or an admin token)."""
    candidates = [tid for tid, role in actor.teams.items() if role == Role.ADMIN]
    if team_id is not None:
        candidates = [tid for tid in candidates if tid == team_id]
    if not candidates:
        return None
    return Team.objects.select_related("tenant", "group").filter(id__in=candidates).order_by("id").first()

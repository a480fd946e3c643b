"""The one chokepoint for tenant permissions.

A caller (a person, or a team token acting as its team's service account) may hold a permission on a
cluster when some team it belongs to was granted that permission on the cluster (a guardian object
permission on the team's group), the cluster belongs to that team's tenant, and the caller's role in
that team allows it. A token's scope acts as a role in its one team, and it is further bounded by its
optional cluster restriction. Nobody gets model-level permissions, and team groups have no members, so
`user.has_perm(...)` is never the way to ask: ask `has_cluster_perm` / `clusters_for`.

Tenant-level rights (teams, members, tokens, audit) follow from TenantAdmin rows (tenant admins) and
team roles (a team admin manages its team's tokens); platform operators are Django superusers and act
through the Django admin and the /api/v1/platform/ endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import apps
from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.db.models import BigIntegerField, Q, QuerySet
from django.db.models.functions import Cast
from guardian.models import GroupObjectPermission

from tenants.models import ApiToken, Membership, Role, Team, TenantAdmin, TokenScope

VIEW = "view_cluster"
OPERATE = "operate_cluster"
ADMIN = "admin_cluster"
CLUSTER_PERMISSIONS = (VIEW, OPERATE, ADMIN)

# What each team role allows on the team's clusters.
ALLOWED_BY_ROLE = {
    Role.VIEWER: {VIEW},
    Role.OPERATOR: {VIEW, OPERATE},
    Role.ADMIN: {VIEW, OPERATE, ADMIN},
}
# A token's scope acts as this role in its team.
ROLE_OF_SCOPE = {
    TokenScope.READ: Role.VIEWER,
    TokenScope.OPERATE: Role.OPERATOR,
    TokenScope.ADMIN: Role.ADMIN,
}
ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass
class Actor:
    """Who is calling: a user, possibly acting through a team token.

    `teams` maps team id -> role (for a token: the role its scope acts as, in its one team).
    """

    user: object
    token: ApiToken | None = None
    teams: dict[int, str] = field(default_factory=dict)

    @property
    def is_authenticated(self) -> bool:
        return bool(getattr(self.user, "is_authenticated", False))

    @property
    def is_operator(self) -> bool:
        """A platform operator (Django superuser); never a token."""
        return (
            self.token is None and self.is_authenticated and bool(getattr(self.user, "is_superuser", False))
        )

    def label(self) -> str:
        if self.token is not None:
            return f"token:{self.token.key} (team {self.token.team.name})"
        if not self.is_authenticated:
            return "anonymous"
        return f"user:{getattr(self.user, 'username', '?')}"

    def role_in(self, team_id: int) -> str | None:
        return self.teams.get(team_id)

    def tenant_ids(self) -> set[int]:
        """Tenants the actor belongs to: through a team, or as a tenant admin."""
        ids = set(Team.objects.filter(id__in=self.teams).values_list("tenant_id", flat=True))
        return ids | self.admin_tenant_ids()

    def admin_tenant_ids(self) -> set[int]:
        """Tenants the actor administers (teams, members, tokens, audit); tokens administer none."""
        if self.token is not None or not self.is_authenticated:
            return set()
        return set(TenantAdmin.objects.filter(user=self.user).values_list("tenant_id", flat=True))

    def cluster_restriction(self) -> set[int] | None:
        """The cluster ids a restricted token is limited to, or None when unrestricted."""
        if self.token is None:
            return None
        if not hasattr(self, "_restriction"):
            ids = set(self.token.clusters.values_list("id", flat=True))
            self._restriction = ids or None
        return self._restriction


def actor_for(user, token: ApiToken | None = None) -> Actor:
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated or not user.is_active:
        return Actor(user=AnonymousUser())
    if token is not None:
        return Actor(user=user, token=token, teams={token.team_id: ROLE_OF_SCOPE[token.scope]})
    if hasattr(user, "service_account_of"):
        # A team's service account acts only through a token, never on its own.
        return Actor(user=AnonymousUser())
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
    return list(Team.objects.filter(id__in=team_ids).select_related("group", "tenant"))


def cluster_model():
    """The clusters app's Cluster model, looked up by name: tenants sits below clusters and never imports it."""
    return apps.get_model("clusters", "Cluster")


def _granted_cluster_ids(teams: list[Team], perm: str):
    """A subquery of the ids of clusters on which any of these teams' groups holds `perm`."""
    Cluster = cluster_model()  # noqa: N806 - a model class

    return (
        GroupObjectPermission.objects.filter(
            group_id__in=[team.group_id for team in teams],
            permission__codename=perm,
            content_type=ContentType.objects.get_for_model(Cluster),
        )
        .annotate(cluster_id=Cast("object_pk", BigIntegerField()))
        .values("cluster_id")
    )


def clusters_granted_to(team: Team, perm: str = VIEW) -> QuerySet:
    """The clusters of the team's tenant on which the team was granted `perm` (whatever its members' roles)."""
    Cluster = cluster_model()  # noqa: N806 - a model class

    return Cluster.objects.filter(id__in=_granted_cluster_ids([team], perm), tenant_id=team.tenant_id)


def clusters_for(actor: Actor, perm: str = VIEW) -> QuerySet:
    """Every cluster on which the actor holds `perm` (a queryset, so callers can filter further)."""
    Cluster = cluster_model()  # noqa: N806 - a model class

    if perm not in CLUSTER_PERMISSIONS:
        raise ValueError(f"unknown cluster permission {perm!r}")
    if not actor.is_authenticated:
        return Cluster.objects.none()
    teams = teams_allowing(actor, perm)
    if not teams:
        return Cluster.objects.none()
    # One query. A grant only counts inside the team's own tenant, so a stray cross-tenant grant is harmless.
    by_tenant: dict[int, list[Team]] = {}
    for team in teams:
        by_tenant.setdefault(team.tenant_id, []).append(team)
    condition = Q()
    for tenant_id, tenant_teams in by_tenant.items():
        condition |= Q(tenant_id=tenant_id, id__in=_granted_cluster_ids(tenant_teams, perm))
    result = Cluster.objects.filter(condition)
    restriction = actor.cluster_restriction()
    if restriction is not None:
        result = result.filter(id__in=restriction)
    return result


def has_cluster_perm(actor: Actor, cluster, perm: str) -> bool:
    return clusters_for(actor, perm).filter(pk=cluster.pk).exists()


def creation_team(actor: Actor, team_id: int | None = None) -> Team | None:
    """The team on whose behalf the actor creates a cluster: one where the actor is admin (or an
    admin-scoped token without a cluster restriction). None when there is no such team."""
    if actor.cluster_restriction() is not None:
        return None
    candidates = [tid for tid, role in actor.teams.items() if role == Role.ADMIN]
    if team_id is not None:
        candidates = [tid for tid in candidates if tid == team_id]
    if not candidates:
        return None
    return Team.objects.select_related("tenant", "group").filter(id__in=candidates).order_by("id").first()


# Tenant-level rights: teams, members, tokens, audit.


def visible_teams(actor: Actor) -> QuerySet:
    """Teams the actor may see: its own teams, and every team of a tenant it administers."""
    if not actor.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(Q(id__in=list(actor.teams)) | Q(tenant_id__in=actor.admin_tenant_ids()))


def can_manage_team(actor: Actor, team: Team) -> bool:
    """Rename or delete a team, manage its members and cluster grants: tenant admins only."""
    return team.tenant_id in actor.admin_tenant_ids()


def can_manage_tokens(actor: Actor, team: Team) -> bool:
    """Create, list and revoke a team's tokens: tenant admins, the team's admins, and the team's own
    admin-scoped tokens (which may only create tokens no broader than themselves)."""
    return can_manage_team(actor, team) or actor.role_in(team.id) == Role.ADMIN


def token_manageable_teams(actor: Actor) -> QuerySet:
    """Teams whose tokens the actor may manage (see can_manage_tokens)."""
    if not actor.is_authenticated:
        return Team.objects.none()
    admin_team_ids = [tid for tid, role in actor.teams.items() if role == Role.ADMIN]
    return Team.objects.filter(Q(id__in=admin_team_ids) | Q(tenant_id__in=actor.admin_tenant_ids()))


def role_at_least(role: str, minimum: str) -> bool:
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[minimum]

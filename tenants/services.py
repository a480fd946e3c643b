"""Tenancy actions: create tenants, teams and tokens; grant clusters to teams; write the audit log."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from guardian.shortcuts import assign_perm

from tenants import tokens
from tenants.access import CLUSTER_PERMISSIONS
from tenants.models import ApiToken, AuditEntry, Membership, Role, Team, Tenant, TenantAdmin


@dataclass
class CreatedTenant:
    tenant: Tenant
    team: Team
    user: object
    password: str | None  # set only when generated here
    token: str


def ensure_team(tenant: Tenant, name: str) -> Team:
    team = Team.objects.filter(tenant=tenant, name=name).first()
    if team is not None:
        return team
    User = get_user_model()
    group = Group.objects.create(name=f"team:{tenant.name}/{name}")
    service_user = User.objects.create(username=f"svc-team-{tenant.name}-{name}"[:150], is_active=True)
    service_user.set_unusable_password()
    service_user.save(update_fields=["password"])
    service_user.groups.add(group)
    return Team.objects.create(tenant=tenant, name=name, group=group, service_user=service_user)


def add_member(team: Team, user, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    user.groups.add(team.group)
    return membership


def issue_token(team: Team, scope: str, *, name: str = "", created_by=None, expires_at=None,
                allowed_networks=None, clusters=()) -> tuple[ApiToken, str]:
    """Create a token; the bearer value is returned once and never stored."""
    key, secret, bearer = tokens.new_token()
    token = ApiToken.objects.create(
        team=team, name=name, key=key, secret_hmac=tokens.secret_hmac(secret), scope=scope,
        created_by=created_by, expires_at=expires_at, allowed_networks=list(allowed_networks or []),
    )
    if clusters:
        token.clusters.set(clusters)
    return token, bearer


@transaction.atomic
def create_tenant(name: str, team_name: str, email: str, password: str | None, token_scope: str) -> CreatedTenant:
    """Create (or reuse) a tenant and team, make the user a tenant admin and team admin, issue a token."""
    User = get_user_model()
    tenant, _ = Tenant.objects.get_or_create(name=name)
    team = ensure_team(tenant, team_name)
    user = User.objects.filter(username=email).first()
    generated = None
    if user is None:
        generated = password or secrets.token_urlsafe(12)
        user = User.objects.create_user(username=email, email=email, password=generated)
        if password:
            generated = None
    elif password:
        user.set_password(password)
        user.save(update_fields=["password"])
    TenantAdmin.objects.get_or_create(tenant=tenant, user=user)
    add_member(team, user, Role.ADMIN)
    _, bearer = issue_token(team, token_scope, name=f"created by create_tenant for {email}", created_by=user)
    return CreatedTenant(tenant=tenant, team=team, user=user, password=generated, token=bearer)


def grant_cluster(team: Team, cluster, perms=CLUSTER_PERMISSIONS) -> None:
    for perm in perms:
        assign_perm(f"clusters.{perm}", team.group, cluster)


def audit(*, actor, action: str, tenant=None, target: str = "", parameters=None, result: str = "",
          client_address: str | None = None) -> AuditEntry:
    """Append one audit entry. `parameters` must already be free of secrets."""
    user = getattr(actor, "user", None)
    return AuditEntry.objects.create(
        tenant=tenant,
        actor_user=user if getattr(user, "pk", None) else None,
        actor=actor.label() if hasattr(actor, "label") else str(actor),
        action=action,
        target=target,
        parameters=parameters or {},
        result=result,
        client_address=client_address,
    )

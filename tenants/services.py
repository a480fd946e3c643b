"""Tenancy actions: tenants, teams, members, tokens, cluster grants; re-exports `audit` for callers.

Checks that need no database beyond the objects given raise django ValidationError (the API answers
400 with the message) or PermissionDenied (403); authorization of the caller happens in the views
through tenants.access.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from tenants import tokens
from tenants.access import (
    ADMIN,
    CLUSTER_PERMISSIONS,
    ROLE_OF_SCOPE,
    Actor,
    clusters_granted_to,
    role_at_least,
)
from tenants.audit import audit, audit_job  # noqa: F401 - public names callers import from here
from tenants.models import ApiToken, Invitation, Membership, Role, Team, Tenant, TenantAdmin
from tenants.validation import validate_name

MAX_ALLOWED_NETWORKS = 32


@dataclass
class CreatedTenant:
    tenant: Tenant
    team: Team
    user: object
    password: str | None  # set only when generated here
    token: str


# Teams


def ensure_team(tenant: Tenant, name: str) -> Team:
    """The tenant's team called `name`, created (with its permission group and service account) if missing."""
    team = Team.objects.filter(tenant=tenant, name=name).first()
    if team is not None:
        return team
    validate_name(name, "team name")
    User = get_user_model()
    # Team groups have no members (see Team); the group only carries the team's object permissions.
    group = Group.objects.create(name=f"team:{tenant.id}/{name}")
    # The tenant id keeps service account names unique: team names are only unique within a tenant.
    service_user = User(username=f"svc-team-{tenant.id}-{name}", is_active=True)
    service_user.set_unusable_password()
    service_user.save()
    return Team.objects.create(tenant=tenant, name=name, group=group, service_user=service_user)


@transaction.atomic
def create_team(tenant: Tenant, name: str) -> Team:
    validate_name(name, "team name")
    if Team.objects.filter(tenant=tenant, name=name).exists():
        raise ValidationError({"name": f"the tenant already has a team named {name!r}"})
    return ensure_team(tenant, name)


@transaction.atomic
def rename_team(team: Team, name: str) -> Team:
    validate_name(name, "team name")
    if Team.objects.filter(tenant=team.tenant_id, name=name).exclude(pk=team.pk).exists():
        raise ValidationError({"name": f"the tenant already has a team named {name!r}"})
    team.name = name
    team.save(update_fields=["name"])
    Group.objects.filter(pk=team.group_id).update(name=f"team:{team.tenant_id}/{name}")
    return team


@transaction.atomic
def delete_team(team: Team) -> None:
    """Delete a team, its tokens and grants; refused while it is the only admin team of some cluster."""
    orphaned = []
    for cluster in clusters_granted_to(team, ADMIN):
        other_admins = [
            t
            for t in Team.objects.filter(tenant=team.tenant_id).exclude(pk=team.pk)
            if clusters_granted_to(t, ADMIN).filter(pk=cluster.pk).exists()
        ]
        if not other_admins:
            orphaned.append(cluster.name)
    if orphaned:
        raise ValidationError(
            {
                "team": (
                    f"the team is the only admin of {', '.join(sorted(orphaned))}; grant admin on them to another "
                    "team first (POST /api/v1/teams/{id}/grants/)"
                )
            }
        )
    group, service_user = team.group, team.service_user
    team.delete()  # cascades to memberships and tokens
    group.delete()  # cascades to its object permissions
    service_user.delete()


# Members


def find_or_create_user(
    email: str, password: str | None = None, *, validate: bool = True
) -> tuple[object, str | None]:
    """The user with this email, or a new one. Returns (user, generated password or None).

    A given password is checked against AUTH_PASSWORD_VALIDATORS unless the platform operator set it
    (`validate=False`, the create_tenant command)."""
    User = get_user_model()
    email = email.strip().lower()
    user = User.objects.filter(username__iexact=email).first()
    if user is not None:
        return user, None
    generated = None
    if password:
        if validate:
            validate_password(password)
    else:
        password = generated = secrets.token_urlsafe(12)
    user = User.objects.create_user(username=email, email=email, password=password)
    return user, generated


def add_member(team: Team, user, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"must be one of {', '.join(Role.values)}"})
    if hasattr(user, "service_account_of"):
        raise ValidationError({"email": "a team's service account cannot be a member"})
    membership, _ = Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def remove_member(team: Team, user) -> None:
    """Remove a person from a team and revoke the team tokens they created: a token acts as the team,
    so one made by someone who left would otherwise outlive their membership (docs/security.md)."""
    Membership.objects.filter(team=team, user=user).delete()
    ApiToken.objects.filter(team=team, created_by=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


# Invitations

INVITATION_DAYS = 7


class InvitationInvalid(ValueError):
    """The invitation secret is unknown, used or expired, or the caller cannot accept it (message says)."""


def _invitation_hmac(secret: str) -> str:
    import hashlib
    import hmac

    from django.conf import settings

    return hmac.new(
        settings.DBPILOT_TOKEN_PEPPER.encode(), f"invitation:{secret}".encode(), hashlib.sha256
    ).hexdigest()


@transaction.atomic
def invite_member(team: Team, email: str, role: str, *, invited_by: str) -> tuple[Invitation, str]:
    """Invite `email` to the team with `role`: the same answer whether or not the address has an account
    (on this tenant or any other). Inviting again re-issues the secret. Returns (invitation, secret); the
    secret is sent by email (`send_invitation`) and never stored."""
    if role not in Role.values:
        raise ValidationError({"role": f"must be one of {', '.join(Role.values)}"})
    email = email.strip().lower()
    secret = secrets.token_urlsafe(24)
    invitation, _ = Invitation.objects.update_or_create(
        team=team,
        email=email,
        status=Invitation.Status.INVITED,
        defaults={
            "role": role,
            "secret_hmac": _invitation_hmac(secret),
            "invited_by": invited_by[:200],
            "expires_at": timezone.now() + timedelta(days=INVITATION_DAYS),
        },
    )
    transaction.on_commit(lambda: send_invitation(invitation, secret))
    return invitation, secret


def reissue_invitation(invitation: Invitation) -> str:
    """A new secret for an open invitation (the operators' `invitation_link` command prints it)."""
    secret = secrets.token_urlsafe(24)
    Invitation.objects.filter(pk=invitation.pk).update(
        secret_hmac=_invitation_hmac(secret), expires_at=timezone.now() + timedelta(days=INVITATION_DAYS)
    )
    return secret


def send_invitation(invitation: Invitation, secret: str) -> None:
    """Email the one-time secret to the invited address (Django's EMAIL_* settings)."""
    import logging

    from django.core.mail import send_mail

    body = (
        f"You are invited to the dbpilot team {invitation.team.name} ({invitation.team.tenant.name}) "
        f"as {invitation.role}.\n\nTo accept, POST /api/v1/invitations/accept/ with "
        f'{{"secret": "{secret}"}} while logged in as {invitation.email}, or with '
        f'{{"secret": "{secret}", "password": "..."}} to create your account. '
        f"The invitation expires in {INVITATION_DAYS} days.\n"
    )
    try:
        send_mail("dbpilot invitation", body, None, [invitation.email])
    except Exception:  # noqa: BLE001 - no mail server: an operator prints a link with invitation_link
        logging.getLogger(__name__).warning(
            "invitation %s: the email could not be sent; an operator can print "
            "a link with manage.py invitation_link",
            invitation.pk,
        )


@transaction.atomic
def accept_invitation(secret: str, user=None, password: str | None = None) -> Membership:
    """Accept an invitation: as the logged-in `user` whose email it names, or (no user) by creating the
    account with `password`. Raises InvitationInvalid or ValidationError (a weak password)."""
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("team")
        .filter(secret_hmac=_invitation_hmac(secret or ""), status=Invitation.Status.INVITED)
        .first()
    )
    if invitation is None or invitation.expires_at <= timezone.now():
        raise InvitationInvalid("this invitation is unknown, already used or expired; ask for a new one")
    User = get_user_model()
    if user is not None:
        if user.username.lower() != invitation.email:
            raise InvitationInvalid("this invitation is for another email address: log in as that person")
    else:
        existing = User.objects.filter(username__iexact=invitation.email).first()
        if existing is not None:
            raise InvitationInvalid(f"log in as {invitation.email} first, then accept the invitation")
        if not password:
            raise ValidationError({"password": "required to create your account"})
        validate_password(password)
        user = User.objects.create_user(username=invitation.email, email=invitation.email, password=password)
    membership = add_member(invitation.team, user, invitation.role)
    invitation.status, invitation.accepted_at, invitation.accepted_by = (
        Invitation.Status.ACCEPTED,
        timezone.now(),
        user,
    )
    invitation.save(update_fields=["status", "accepted_at", "accepted_by"])
    audit(
        actor=f"user:{user.username}",
        action="invitation.accept",
        tenant=invitation.team.tenant,
        target=f"invitation:{invitation.pk}",
        parameters={"team": invitation.team_id, "role": invitation.role},
        result="ok",
    )
    return membership


# Tokens


@dataclass(frozen=True)
class TokenRequest:
    """A validated request for a new token."""

    scope: str
    name: str = ""
    expires_at: object = None
    allowed_networks: tuple[str, ...] = ()
    cluster_ids: tuple[int, ...] = ()


def clean_allowed_networks(raw) -> tuple[str, ...]:
    if raw in (None, ""):
        return ()
    if not isinstance(raw, (list, tuple)):
        raise ValidationError({"allowed_networks": 'must be a list of CIDRs, e.g. ["192.0.2.0/24"]'})
    if len(raw) > MAX_ALLOWED_NETWORKS:
        raise ValidationError({"allowed_networks": f"at most {MAX_ALLOWED_NETWORKS} networks"})
    networks = []
    for item in raw:
        try:
            networks.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
        except ValueError:
            raise ValidationError(
                {"allowed_networks": f"{item!r} is not a network (CIDR) or address"}
            ) from None
    return tuple(networks)


def _network_within(inner: str, outers: tuple[str, ...] | list[str]) -> bool:
    network = ipaddress.ip_network(inner, strict=False)
    for outer in outers:
        candidate = ipaddress.ip_network(outer, strict=False)
        if candidate.version == network.version and network.subnet_of(candidate):
            return True
    return False


def check_token_request(actor: Actor, team: Team, request: TokenRequest) -> None:
    """Validate a token request against the team and, when the caller is itself a token, against the
    caller: a token can only create tokens no broader than itself (scope, expiry, networks, clusters)."""
    if request.expires_at is not None and request.expires_at <= timezone.now():
        raise ValidationError({"expires_at": "must be in the future"})
    if request.cluster_ids:
        granted = set(
            clusters_granted_to(team).filter(pk__in=request.cluster_ids).values_list("pk", flat=True)
        )
        missing = sorted(set(request.cluster_ids) - granted)
        if missing:
            raise ValidationError(
                {"clusters": f"not found among the team's clusters: {', '.join(map(str, missing))}"}
            )
    parent = actor.token
    if parent is None:
        return
    if not role_at_least(ROLE_OF_SCOPE[parent.scope], ROLE_OF_SCOPE[request.scope]):
        raise PermissionDenied(f"a {parent.scope}-scoped token cannot create a {request.scope}-scoped token")
    if parent.expires_at is not None and (
        request.expires_at is None or request.expires_at > parent.expires_at
    ):
        raise PermissionDenied("a token that expires can only create tokens that expire no later than itself")
    if parent.allowed_networks and (
        not request.allowed_networks
        or not all(_network_within(net, parent.allowed_networks) for net in request.allowed_networks)
    ):
        raise PermissionDenied(
            "a token limited to some networks can only create tokens limited to those networks"
        )
    restriction = actor.cluster_restriction()
    if restriction is not None and (not request.cluster_ids or not set(request.cluster_ids) <= restriction):
        raise PermissionDenied(
            "a token restricted to some clusters can only create tokens restricted to those clusters"
        )


@transaction.atomic
def issue_token(
    team: Team,
    scope: str,
    *,
    name: str = "",
    created_by=None,
    expires_at=None,
    allowed_networks=None,
    clusters=(),
) -> tuple[ApiToken, str]:
    """Create a token; the bearer value is returned once and never stored (only an HMAC of its secret)."""
    key, secret, bearer = tokens.new_token()
    token = ApiToken.objects.create(
        team=team,
        name=name,
        key=key,
        secret_hmac=tokens.secret_hmac(secret),
        scope=scope,
        created_by=created_by,
        expires_at=expires_at,
        allowed_networks=list(allowed_networks or []),
    )
    if clusters:
        token.clusters.set(clusters)
    return token, bearer


def revoke_token(token: ApiToken) -> ApiToken:
    """Revoke at once (idempotent); the row stays for the audit trail."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db(fields=["revoked_at"])
    return token


# Tenants and grants


@transaction.atomic
def create_tenant(
    name: str, team_name: str, email: str, password: str | None, token_scope: str
) -> CreatedTenant:
    """Create (or reuse) a tenant and team, make the user a tenant admin and team admin, issue a token."""
    validate_name(name, "tenant name")
    tenant, _ = Tenant.objects.get_or_create(name=name)
    team = ensure_team(tenant, team_name)
    user, generated = find_or_create_user(email, password, validate=False)
    if password and generated is None and not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    TenantAdmin.objects.get_or_create(tenant=tenant, user=user)
    add_member(team, user, Role.ADMIN)
    _, bearer = issue_token(team, token_scope, name=f"created by create_tenant for {email}", created_by=user)
    return CreatedTenant(tenant=tenant, team=team, user=user, password=generated, token=bearer)


def grant_cluster(team: Team, cluster, perms=CLUSTER_PERMISSIONS) -> None:
    """Grant a team permissions on one of its tenant's clusters (view is implied by the others)."""
    if cluster.tenant_id != team.tenant_id:
        raise PermissionDenied("a cluster can only be granted to teams of its own tenant")
    perms = set(perms)
    if perms - set(CLUSTER_PERMISSIONS):
        raise ValidationError({"permissions": f"must be among {', '.join(CLUSTER_PERMISSIONS)}"})
    perms.add("view_cluster")
    for perm in sorted(perms):
        assign_perm(f"clusters.{perm}", team.group, cluster)


def revoke_cluster(team: Team, cluster, perms=CLUSTER_PERMISSIONS) -> None:
    """Take permissions on a cluster back from a team (all of them by default)."""
    for perm in perms:
        remove_perm(f"clusters.{perm}", team.group, cluster)

"""Tenancy: a Tenant owns clusters; Teams of a tenant are granted clusters; Members hold a role per team.

Object permissions (django-guardian) are granted to each team's Django group, never globally to a
user: a global permission would bypass every object check.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models


class Tenant(models.Model):
    """An organisation using dbpilot; every cluster belongs to exactly one tenant."""

    name = models.CharField(max_length=63, unique=True)
    max_clusters = models.PositiveIntegerField(default=settings.DBPILOT_DEFAULT_QUOTA_CLUSTERS)
    max_servers = models.PositiveIntegerField(default=settings.DBPILOT_DEFAULT_QUOTA_SERVERS)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class TenantAdmin(models.Model):
    """A user who manages a tenant's teams, members, tokens and audit log."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="admins")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tenant_admin_of")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="unique_tenant_admin")]


class Team(models.Model):
    """A group of people of one tenant; clusters are granted to teams.

    `group` carries the guardian object permissions; `service_user` is the account a team token acts as,
    so tokens go through exactly the same object checks as people.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=63)
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team")
    service_user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="service_account_of"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="unique_team_name_per_tenant")]

    def __str__(self) -> str:
        return f"{self.tenant.name}/{self.name}"


class Role(models.TextChoices):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


class Membership(models.Model):
    """A user's role in a team."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="unique_membership")]


class TokenScope(models.TextChoices):
    READ = "read"
    OPERATE = "operate"
    ADMIN = "admin"


class ApiToken(models.Model):
    """A team API token: a public key plus an HMAC of the secret; the secret is shown once.

    The bearer value is `dbp_<key>_<secret>`.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100, blank=True, default="")
    key = models.CharField(max_length=16, unique=True)
    secret_hmac = models.CharField(max_length=64)
    scope = models.CharField(max_length=16, choices=TokenScope.choices, default=TokenScope.READ)
    expires_at = models.DateTimeField(null=True, blank=True)
    allowed_networks = models.JSONField(default=list, blank=True)
    clusters = models.ManyToManyField("clusters.Cluster", blank=True, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"dbp_{self.key}_…"


class AuditEntry(models.Model):
    """One mutating action: append-only (never updated or deleted through the application)."""

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=200)  # "user:alice@example.com" or "token:abcd1234 (team ops)"
    action = models.CharField(max_length=100)
    target = models.CharField(max_length=200, blank=True, default="")
    parameters = models.JSONField(default=dict, blank=True)
    result = models.CharField(max_length=200, blank=True, default="")
    client_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

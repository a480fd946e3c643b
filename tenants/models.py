"""Tenancy: a Tenant owns clusters; Teams of a tenant are granted clusters; Members hold a role per team.

Object permissions (django-guardian) are granted to each team's Django group, never globally to a
user: a global permission would bypass every object check.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q

from tenants.validation import validate_name


class Tenant(models.Model):
    """An organisation using dbpilot; every cluster belongs to exactly one tenant."""

    name = models.CharField(max_length=63, unique=True, validators=[validate_name])
    max_clusters = models.PositiveIntegerField(default=settings.DBPILOT_DEFAULT_QUOTA_CLUSTERS)
    max_servers = models.PositiveIntegerField(default=settings.DBPILOT_DEFAULT_QUOTA_SERVERS)
    max_memory_mb = models.PositiveIntegerField(default=settings.DBPILOT_DEFAULT_QUOTA_MEMORY_MB)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class TenantAdmin(models.Model):
    """A user who manages a tenant's teams, members, tokens and audit log."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="admins")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tenant_admin_of"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="unique_tenant_admin")]


class Team(models.Model):
    """A group of people of one tenant; clusters are granted to teams.

    `group` carries the guardian object permissions; `service_user` is the account a team token acts as,
    so tokens go through exactly the same object checks as people. Nobody is a member of `group`:
    guardian would then give every member the team's full grants whatever their role, so permissions
    are read through tenants.access only, which applies the member's role or the token's scope.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=63, validators=[validate_name])
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
    """A member's role in a team: what they may do on the team's clusters."""

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
    """What a team token may do; a scope acts like the team role of the same rank."""

    READ = "read"
    OPERATE = "operate"
    ADMIN = "admin"


class Invitation(models.Model):
    """An invitation to join a team. Adding a member by email creates one and never reveals whether the
    address has an account anywhere; the person becomes a member by accepting it with its one-time
    secret (stored as an HMAC only), logged in as that address or by choosing a password for a new one."""

    class Status(models.TextChoices):
        INVITED = "invited"
        ACCEPTED = "accepted"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.CharField(max_length=150)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    secret_hmac = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INVITED)
    invited_by = models.CharField(max_length=200, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    audit_kind = "invitation"

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "email"],
                condition=Q(status="invited"),
                name="one_open_invitation_per_team_and_email",
            )
        ]

    def __str__(self) -> str:
        return f"invitation {self.pk} to {self.team_id}"


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

    audit_kind = "token"  # audit targets read token:<id>, as the API path does

    def __str__(self) -> str:
        return f"dbp_{self.key}_…"

    @property
    def prefix(self) -> str:
        """The visible part of the bearer value, enough to recognise a token in a list."""
        return f"dbp_{self.key}"


class AuditLogIsAppendOnly(Exception):
    """Raised when code tries to change or remove an audit entry."""


class AuditEntryQuerySet(models.QuerySet):
    """Audit entries are written once: bulk updates and deletes are refused.

    (Deleting a user or tenant still detaches their entries: Django's on_delete=SET_NULL goes through
    the model's base manager, not this queryset.)
    """

    def update(self, **kwargs):
        raise AuditLogIsAppendOnly("audit entries cannot be changed")

    def delete(self):
        raise AuditLogIsAppendOnly("audit entries cannot be deleted")


class AuditEntry(models.Model):
    """One mutating action or job: append-only (never updated or deleted through the application).

    `parameters` never holds secrets (see tenants.audit.scrub); `actor` is a readable label that stays
    meaningful after the user or token is gone.
    """

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

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditLogIsAppendOnly("audit entries cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogIsAppendOnly("audit entries cannot be deleted")


class PlatformState(models.Model):
    """Platform-wide switches operators flip (a single row, id 1).

    `paused` stops every automatic action on every cluster (maintenance of dbpilot itself, incidents).
    Read it through tenants.platform.platform_paused().
    """

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID, editable=False)
    paused = models.BooleanField(default=False)
    reason = models.CharField(max_length=200, blank=True, default="")
    changed_by = models.CharField(max_length=200, blank=True, default="")
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="platform_state_single_row")]

    def __str__(self) -> str:
        return "platform paused" if self.paused else "platform running"


class LoginFailure(models.Model):
    """A failed portal login, kept while it counts towards the login rate limit.

    The account is stored as an HMAC of the normalised email, never as typed: people sometimes type a
    password into the email field.
    """

    account_digest = models.CharField(max_length=64)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["account_digest", "created_at"]),
            models.Index(fields=["client_address", "created_at"]),
        ]


class PlatformFinding(models.Model):
    """A finding about dbpilot itself (not a cluster): e.g. `REDIS_UNREACHABLE` while its Redis does not
    answer. Open until resolved; at most one open per code. Written by tenants.platform_health."""

    code = models.CharField(max_length=64)
    severity = models.CharField(max_length=16, default="critical")
    message = models.CharField(max_length=500)
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_platform_finding_per_code",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({'open' if self.resolved_at is None else 'resolved'})"

"""Inventory (clusters, servers), what monitoring found (findings, events) and jobs.

Hot per-tick state (the latest probe results and topology) lives in Redis; the database keeps what must
survive a restart.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from clusters.domain.topology import InventoryServer
from tenants.models import Tenant

HA_JOB_KINDS = ("switchover", "failover", "rejoin", "adopt")
ACTIVE_JOB_STATES = ("pending", "running")


class Cluster(models.Model):
    """A replication cluster: one primary and its replicas, owned by a tenant."""

    class Origin(models.TextChoices):
        REGISTERED = "registered"
        PROVISIONED = "provisioned"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="clusters")
    name = models.CharField(max_length=63)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.REGISTERED)
    settings = models.JSONField(default=dict)
    failover_armed = models.BooleanField(default=False)
    # Fernet tokens of {"user", "password"}; never returned by the API.
    credentials_encrypted = models.TextField(default="")
    replication_credentials_encrypted = models.TextField(default="")
    health_key_hmac = models.CharField(max_length=64, default="")
    epoch = models.PositiveBigIntegerField(default=1)
    primary = models.ForeignKey("Server", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_job = models.ForeignKey("Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Provisioned clusters: the spec they were made from (provider, replicas, semi_sync, size, key), never a
    # secret; the local root password (and, until the accounts exist, the master user) encrypted.
    provision = models.JSONField(default=dict, blank=True)
    provision_secrets_encrypted = models.TextField(default="", blank=True)
    parameter_group = models.ForeignKey(
        "ParameterGroup", null=True, blank=True, on_delete=models.PROTECT, related_name="clusters"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="unique_cluster_name_per_tenant")
        ]
        permissions = [
            ("operate_cluster", "Switch over, fail over and set maintenance"),
            ("admin_cluster", "Change settings, routes and credentials; delete"),
        ]
        # view_cluster comes from Django's default permissions.
        default_permissions = ("add", "change", "delete", "view")

    def __str__(self) -> str:
        return f"{self.tenant.name}/{self.name}"

    @property
    def label(self) -> str:
        return f"{self.tenant.name}/{self.name}"


class Server(models.Model):
    """One database server of a cluster, addressed as host:port (as the user wrote it) and owned by its
    pinned canonical address `ip`: one address is one server, whatever its spelling, in one cluster."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="servers")
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    # The address `host` resolved to when the server was registered, canonical (ipaddress, IPv4-mapped
    # IPv6 folded to IPv4): what ownership compares (clusters.services.registration).
    ip = models.CharField(max_length=45)
    maintenance = models.BooleanField(default=False)
    # Set when dbpilot demoted this server or failed over away from it: it is fenced whenever it reappears.
    fenced = models.BooleanField(default=False)
    quarantined = models.BooleanField(default=False)
    # Provisioned servers: the provider's instance name and the server's memory (quota); "" when registered.
    instance = models.CharField(max_length=100, default="", blank=True)
    memory_mb = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "host", "port"], name="unique_server_in_cluster"),
            # A server belongs to one cluster of one tenant, compared by address, not by text.
            models.UniqueConstraint(fields=["ip", "port"], name="one_cluster_per_server_address"),
            models.CheckConstraint(condition=~Q(ip=""), name="server_address_pinned"),
        ]

    def as_inventory(self) -> InventoryServer:
        """The server as the pure topology analysis sees it (clusters.domain.topology)."""
        return InventoryServer(
            id=self.id,
            address=self.address,
            maintenance=self.maintenance,
            fenced=self.fenced,
            quarantined=self.quarantined,
        )

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.address


class Finding(models.Model):
    """A condition monitoring found, open until it resolves (resolved_at set)."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="findings")
    server = models.ForeignKey(
        Server, null=True, blank=True, on_delete=models.CASCADE, related_name="findings"
    )
    code = models.CharField(max_length=64)
    severity = models.CharField(max_length=16)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["cluster", "resolved_at"])]


class Event(models.Model):
    """The cluster's event log: findings opening and resolving, jobs, topology and settings changes."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=64)
    severity = models.CharField(max_length=16, default="info")
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class JobQuerySet(models.QuerySet):
    def active_ha(self, cluster_id: int) -> Job | None:
        """The cluster's pending or running HA job (at most one: the conditional unique constraint)."""
        return (
            self.filter(cluster_id=cluster_id, kind__in=HA_JOB_KINDS, state__in=ACTIVE_JOB_STATES)
            .order_by("created_at")
            .first()
        )


class Job(models.Model):
    """A switchover, failover, rejoin, adopt, provision, backup... with its ordered steps and result.

    At most one HA job (switchover, failover, rejoin, adopt) is pending or running per cluster: the
    database enforces it with a conditional unique constraint.
    """

    objects = JobQuerySet.as_manager()

    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        REFUSED = "refused"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=32)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    params = models.JSONField(default=dict, blank=True)
    # [{"name", "state": pending|running|ok|failed|skipped, "started_at", "finished_at", "detail"}]
    steps = models.JSONField(default=list, blank=True)
    result = models.JSONField(default=dict, blank=True)
    requested_by = models.CharField(max_length=200, default="")
    lease_owner = models.CharField(max_length=200, default="", blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster"],
                condition=Q(kind__in=HA_JOB_KINDS, state__in=ACTIVE_JOB_STATES),
                name="one_active_ha_job_per_cluster",
            )
        ]


class JobArtifact(models.Model):
    """A file a job kept for people to read: e.g. the SQL of the transactions a flashback discarded, saved
    before anything was rolled back (`GET /api/v1/jobs/{id}/artifacts/`)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="artifacts")
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100, default="text/plain")
    description = models.CharField(max_length=500, default="", blank=True)
    content = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["job", "name"], name="one_artifact_name_per_job")]


from clusters.alerts.models import AlertDelivery, AlertSubscription  # noqa: E402,F401
from clusters.backup_models import Backup, BinlogArchive  # noqa: E402,F401
from clusters.hosts import DatabaseHost, HostedInstance  # noqa: E402,F401
from clusters.parameter_groups import ParameterGroup  # noqa: E402,F401
from clusters.routes.models import Route  # noqa: E402,F401

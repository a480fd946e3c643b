"""Cluster API payloads (design.md's cluster object)."""

from __future__ import annotations

from rest_framework import serializers

from clusters.domain.settings import ClusterSettings
from clusters.models import Cluster, Event, Job, Server


class ServerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Server
        fields = ["id", "host", "port", "maintenance"]


class JobSerializer(serializers.ModelSerializer):
    cluster = serializers.IntegerField(source="cluster_id", read_only=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "cluster",
            "kind",
            "state",
            "steps",
            "result",
            "params",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
        ]


class ClusterSerializer(serializers.ModelSerializer):
    tenant = serializers.CharField(source="tenant.name", read_only=True)
    servers = ServerSerializer(many=True, read_only=True)
    settings = serializers.SerializerMethodField()
    failover_mode = serializers.SerializerMethodField()
    paused = serializers.SerializerMethodField()
    primary = serializers.SerializerMethodField()
    health = serializers.SerializerMethodField()
    job = JobSerializer(source="last_job", read_only=True, allow_null=True)
    endpoints = serializers.SerializerMethodField(
        help_text='where a tenant connects: {"writer": "host:port", "readers": ["host:port", ...]}'
    )
    my_permissions = serializers.SerializerMethodField(
        help_text="what the caller may do on this cluster: view_cluster, operate_cluster, admin_cluster"
    )
    provision = serializers.SerializerMethodField(
        help_text="how a provisioned cluster was asked for (null for a registered one): provider, "
        "semi_sync, size, parameter_group (a name or null), parameters, pending_restart; never a secret"
    )

    class Meta:
        model = Cluster
        fields = [
            "id",
            "name",
            "tenant",
            "origin",
            "servers",
            "settings",
            "failover_mode",
            "failover_armed",
            "paused",
            "primary",
            "health",
            "job",
            "endpoints",
            "provision",
            "created_at",
            "updated_at",
            "my_permissions",
        ]
        # PATCH takes SettingsPatchSerializer: everything shown here is read-only.
        read_only_fields = fields

    def _settings(self, obj) -> dict:
        return ClusterSettings(
            **{k: v for k, v in obj.settings.items() if k in ClusterSettings.__dataclass_fields__}
        ).as_dict()

    def get_settings(self, obj) -> dict:
        return self._settings(obj)

    def get_failover_mode(self, obj) -> str:
        return self._settings(obj)["failover_mode"]

    def get_paused(self, obj) -> bool:
        return self._settings(obj)["paused"]

    def get_my_permissions(self, obj) -> list[str]:
        request = self.context.get("request")
        if request is None:
            return []
        from tenants.access import CLUSTER_PERMISSIONS, actor_from_request, clusters_for

        # One query per permission for the whole response, cached on the request.
        granted = getattr(request, "_dbpilot_cluster_perms", None)
        if granted is None:
            actor = actor_from_request(request)
            granted = {
                perm: set(clusters_for(actor, perm).values_list("id", flat=True))
                for perm in CLUSTER_PERMISSIONS
            }
            request._dbpilot_cluster_perms = granted
        return [perm for perm in CLUSTER_PERMISSIONS if obj.id in granted[perm]]

    def get_provision(self, obj) -> dict | None:
        # What `dbpilot export` writes back as a spec's provision block (the CLI has no other source).
        if obj.origin != Cluster.Origin.PROVISIONED:
            return None
        spec = obj.provision or {}
        return {
            "provider": spec.get("provider"),
            "semi_sync": spec.get("semi_sync"),
            "size": {"memory_mb": spec.get("memory_mb")},
            "parameter_group": obj.parameter_group.name if obj.parameter_group_id else None,
            "parameters": spec.get("parameters") or {},
            "pending_restart": spec.get("pending_restart") or {},
        }

    def get_endpoints(self, obj) -> dict:
        from clusters.services.provisioning import endpoints

        return endpoints(obj)

    def get_primary(self, obj) -> str | None:
        return obj.primary.address if obj.primary_id else None

    def get_health(self, obj) -> str:
        from clusters.domain.findings import worst_severity

        return worst_severity([f.severity for f in obj.findings.all() if f.resolved_at is None])


class CredentialsSerializer(serializers.Serializer):
    user = serializers.CharField(max_length=80)
    password = serializers.CharField(
        max_length=256, allow_blank=True, write_only=True, style={"input_type": "password"}
    )


class ServerInputSerializer(serializers.Serializer):
    host = serializers.CharField(max_length=255)
    port = serializers.IntegerField(min_value=1, max_value=65535, default=3306)


class RegisterClusterSerializer(serializers.Serializer):
    """The registration payload; deep validation (allowlist, credentials) happens in the service."""

    name = serializers.CharField(max_length=63)
    servers = ServerInputSerializer(many=True)
    credentials = CredentialsSerializer(write_only=True)
    replication_credentials = CredentialsSerializer(write_only=True, required=False)
    settings = serializers.DictField(required=False)
    failover_mode = serializers.ChoiceField(choices=["manual", "automatic"], required=False)
    team = serializers.IntegerField(
        required=False, help_text="the team that owns it (default: your first admin team)"
    )


# Shown in the cluster object but not writable by PATCH (the OpenAPI schema marks them read-only).
READ_ONLY_FIELDS = {
    "paused": 'is read-only here: pause with {"settings": {"paused": true}}',
    "name": "is read-only: a cluster keeps its name (register a new one to rename)",
    "failover_armed": "is read-only: it becomes true when the adopt job of failover_mode automatic succeeds",
}


class SettingsPatchSerializer(serializers.Serializer):
    """PATCH of a cluster: `{"settings": {...}}` and/or top-level `failover_mode`; nothing else."""

    settings = serializers.DictField(required=False, help_text="settings to change (settings.paused pauses)")
    failover_mode = serializers.ChoiceField(choices=["manual", "automatic"], required=False)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ['the body must be a JSON object, e.g. {"settings": {"paused": true}}']}
            )
        errors = {key: message for key, message in READ_ONLY_FIELDS.items() if key in data}
        errors.update(
            {
                key: 'cannot be changed here (only "settings" and "failover_mode")'
                for key in data
                if key not in self.fields and key not in READ_ONLY_FIELDS
            }
        )
        if errors:
            raise serializers.ValidationError(dict(sorted(errors.items())))
        return super().to_internal_value(data)

    def changes(self) -> dict:
        """The setting changes asked, top-level failover_mode included."""
        changes = dict(self.validated_data.get("settings") or {})
        if "failover_mode" in self.validated_data:
            changes["failover_mode"] = self.validated_data["failover_mode"]
        return changes


class MaintenanceSerializer(serializers.Serializer):
    on = serializers.BooleanField()


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "kind", "severity", "message", "data", "created_at"]


class ReplicationSerializer(serializers.Serializer):
    source = serializers.CharField(allow_null=True)
    io_running = serializers.CharField(allow_null=True)
    sql_running = serializers.BooleanField(allow_null=True)
    seconds_behind = serializers.IntegerField(allow_null=True)


class TopologyServerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    host = serializers.CharField()
    port = serializers.IntegerField()
    role = serializers.CharField()
    state = serializers.CharField()
    read_only = serializers.BooleanField(allow_null=True)
    gtid_current_pos = serializers.CharField(allow_null=True)
    replication = ReplicationSerializer(allow_null=True)
    maintenance = serializers.BooleanField()
    fenced = serializers.BooleanField(help_text="left behind by a failover: kept read-only until it rejoins")
    quarantined = serializers.BooleanField(
        help_text="holds transactions the primary lacks: rejoin it (flashback, reseed) or rebuild it"
    )


class FindingSerializer(serializers.Serializer):
    code = serializers.CharField()
    severity = serializers.CharField()
    message = serializers.CharField()
    server = serializers.CharField(allow_null=True)
    server_id = serializers.IntegerField(allow_null=True)
    opened_at = serializers.DateTimeField()


class TopologySerializer(serializers.Serializer):
    primary = serializers.CharField(allow_null=True)
    epoch = serializers.IntegerField()
    servers = TopologyServerSerializer(many=True)
    findings = FindingSerializer(many=True)
    updated_at = serializers.CharField(allow_null=True)

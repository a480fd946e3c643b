"""Cluster API payloads (design.md's cluster object)."""
from __future__ import annotations

from rest_framework import serializers

from clusters.domain.settings import ClusterSettings
from clusters.models import Cluster, Job, Server


class ServerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Server
        fields = ["id", "host", "port", "maintenance"]


class JobSerializer(serializers.ModelSerializer):
    cluster = serializers.IntegerField(source="cluster_id", read_only=True)

    class Meta:
        model = Job
        fields = ["id", "cluster", "kind", "state", "steps", "result", "params", "requested_by",
                  "created_at", "started_at", "finished_at"]


class ClusterSerializer(serializers.ModelSerializer):
    tenant = serializers.CharField(source="tenant.name", read_only=True)
    servers = ServerSerializer(many=True, read_only=True)
    settings = serializers.SerializerMethodField()
    failover_mode = serializers.SerializerMethodField()
    paused = serializers.SerializerMethodField()
    primary = serializers.SerializerMethodField()
    health = serializers.SerializerMethodField()
    job = JobSerializer(source="last_job", read_only=True, allow_null=True)

    class Meta:
        model = Cluster
        fields = ["id", "name", "tenant", "origin", "servers", "settings", "failover_mode", "failover_armed",
                  "paused", "primary", "health", "job", "created_at", "updated_at"]

    def _settings(self, obj) -> dict:
        return ClusterSettings(**{k: v for k, v in obj.settings.items() if k in ClusterSettings.__dataclass_fields__}).as_dict()

    def get_settings(self, obj) -> dict:
        return self._settings(obj)

    def get_failover_mode(self, obj) -> str:
        return self._settings(obj)["failover_mode"]

    def get_paused(self, obj) -> bool:
        return self._settings(obj)["paused"]

    def get_primary(self, obj) -> str | None:
        return obj.primary.address if obj.primary_id else None

    def get_health(self, obj) -> str:
        from clusters.domain.findings import worst_severity

        return worst_severity([f.severity for f in obj.findings.all() if f.resolved_at is None])

"""Payloads of the failover endpoints: the manual failover request and `failover-control`."""

from __future__ import annotations

from rest_framework import serializers


class FailoverRequestSerializer(serializers.Serializer):
    candidate = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=300,
        help_text='the replica to promote, "host:port" (default: elected)',
    )


class FailoverJobSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    automatic = serializers.BooleanField()
    old_primary = serializers.CharField(allow_null=True)
    new_primary = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    detail = serializers.CharField(allow_blank=True)
    guarantee = serializers.CharField(allow_null=True, help_text="the RPO guarantee the job stated")


class CheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    ok = serializers.BooleanField()
    detail = serializers.CharField()


class BlockedIncidentSerializer(FailoverJobSummarySerializer):
    incident = serializers.CharField(allow_null=True)
    checks = CheckSerializer(many=True, help_text="the guards that blocked it")


class FailoverCountersSerializer(serializers.Serializer):
    failovers_in_window = serializers.IntegerField()
    failover_limit = serializers.IntegerField()
    failover_window_seconds = serializers.IntegerField()
    failover_min_interval_seconds = serializers.IntegerField()
    last_failover_at = serializers.DateTimeField(allow_null=True)
    next_allowed_at = serializers.DateTimeField(allow_null=True)
    reset_at = serializers.DateTimeField(allow_null=True)


class FailoverControlSerializer(serializers.Serializer):
    failover_mode = serializers.CharField()
    armed = serializers.BooleanField()
    paused = serializers.BooleanField()
    platform_paused = serializers.BooleanField()
    counters = FailoverCountersSerializer()
    last_failover = FailoverJobSummarySerializer(allow_null=True)
    last_blocked = BlockedIncidentSerializer(allow_null=True)

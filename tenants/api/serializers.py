"""Payloads of the tenancy API. Secrets are write-only: a token's bearer value appears once, in the
response that creates it; a generated member password likewise."""

from __future__ import annotations

from rest_framework import serializers

from tenants.access import CLUSTER_PERMISSIONS
from tenants.models import ApiToken, AuditEntry, Membership, Role, Team, TokenScope
from tenants.validation import validate_one_line

# Ids named in a body: bounded like the database's 64-bit keys, so a huge number is a 400, not an overflow.
MAX_ID = 2**63 - 1


class TeamSerializer(serializers.ModelSerializer):
    tenant = serializers.IntegerField(source="tenant_id", read_only=True)
    tenant_name = serializers.CharField(source="tenant.name", read_only=True)
    your_role = serializers.SerializerMethodField(help_text="the caller's role in the team, or null")

    class Meta:
        model = Team
        fields = ["id", "name", "tenant", "tenant_name", "your_role", "created_at"]

    def get_your_role(self, obj) -> str | None:
        actor = self.context.get("actor")
        return actor.role_in(obj.id) if actor is not None else None


class TeamCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=63, trim_whitespace=False)
    tenant = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="the tenant (default: the one you administer)",
    )


class TeamRenameSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=63, trim_whitespace=False)


class MemberSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="user_id", read_only=True, help_text="the user's id")
    email = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "role"]


class MemberAddSerializer(serializers.Serializer):
    """Invite a person by email: they become a member when they accept (never a password here)."""

    email = serializers.EmailField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.VIEWER)

    def to_internal_value(self, data):
        if isinstance(data, dict) and "password" in data:
            raise serializers.ValidationError(
                {
                    "password": "not accepted: the invited person sets their own "
                    "password when accepting the invitation"
                }
            )
        return super().to_internal_value(data)


class InvitationSerializer(serializers.Serializer):
    """The answer to adding a member: always the same shape, whoever the address belongs to."""

    id = serializers.IntegerField(read_only=True, help_text="the invitation's id")
    email = serializers.CharField(read_only=True)
    role = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True, help_text="invited until accepted")


class InvitationAcceptSerializer(serializers.Serializer):
    secret = serializers.CharField(
        max_length=200, trim_whitespace=False, help_text="the one-time secret sent by email"
    )
    password = serializers.CharField(
        max_length=1024,
        required=False,
        write_only=True,
        style={"input_type": "password"},
        help_text="to create your account (when not logged in)",
    )


class InvitationAcceptedSerializer(serializers.Serializer):
    team = serializers.IntegerField()
    team_name = serializers.CharField()
    role = serializers.CharField()
    email = serializers.CharField()


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class GrantSerializer(serializers.Serializer):
    cluster = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    cluster_name = serializers.CharField(read_only=True)
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=CLUSTER_PERMISSIONS),
        allow_empty=False,
        default=list(CLUSTER_PERMISSIONS),
    )


class TokenSerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(read_only=True, help_text="the visible start of the bearer value")
    team = serializers.IntegerField(source="team_id", read_only=True)
    clusters = serializers.SerializerMethodField(
        help_text="the clusters it is restricted to (empty: all the team's)"
    )
    created_by = serializers.SerializerMethodField()
    active = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "team",
            "scope",
            "expires_at",
            "allowed_networks",
            "clusters",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
            "active",
        ]

    def get_clusters(self, obj) -> list[int]:
        return sorted(c.pk for c in obj.clusters.all())

    def get_created_by(self, obj) -> str | None:
        return obj.created_by.username if obj.created_by_id else None

    def get_active(self, obj) -> bool:
        from django.utils import timezone

        return obj.revoked_at is None and (obj.expires_at is None or obj.expires_at > timezone.now())


class TokenCreateSerializer(serializers.Serializer):
    team = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="the team (default: your only manageable team)",
    )
    name = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        validators=[validate_one_line],
    )
    scope = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.READ)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    allowed_networks = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        default=list,
        max_length=32,
        help_text='client networks the token may be used from, as CIDRs (e.g. ["192.0.2.0/24"]); empty: any',
    )
    clusters = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        default=list,
        max_length=500,
        help_text="restrict the token to these clusters of the team (empty: all the team's clusters)",
    )


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="the bearer value: shown once, store it now")

    class Meta(TokenSerializer.Meta):
        fields = TokenSerializer.Meta.fields + ["token"]


class AuditEntrySerializer(serializers.ModelSerializer):
    tenant = serializers.CharField(source="tenant.name", read_only=True, allow_null=True, default=None)

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "created_at",
            "tenant",
            "actor",
            "action",
            "target",
            "parameters",
            "result",
            "client_address",
        ]


class LoginSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=1024, write_only=True, style={"input_type": "password"})


class MeTeamSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    tenant = serializers.CharField()
    role = serializers.CharField()


class MeTenantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    is_admin = serializers.BooleanField()


class MeSerializer(serializers.Serializer):
    email = serializers.CharField(allow_null=True)
    tenants = MeTenantSerializer(many=True)
    teams = MeTeamSerializer(many=True)
    is_operator = serializers.BooleanField()
    is_tenant_admin = serializers.BooleanField()
    token = serializers.DictField(
        allow_null=True, help_text="the token in use ({id, prefix, scope, team}), or null"
    )


class CsrfSerializer(serializers.Serializer):
    csrf_token = serializers.CharField()


class PlatformStateSerializer(serializers.Serializer):
    paused = serializers.BooleanField()
    reason = serializers.CharField()
    changed_by = serializers.CharField()
    changed_at = serializers.DateTimeField(allow_null=True)


class PlatformPauseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

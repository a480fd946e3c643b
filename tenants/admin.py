"""The Django admin for platform operators: tenants and their quotas and admins, teams, members,
tokens (revoke only), the audit log (read only) and the platform pause."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone

from tenants import services
from tenants.models import ApiToken, AuditEntry, Membership, PlatformState, Team, Tenant, TenantAdmin


class TenantAdminInline(admin.TabularInline):
    model = TenantAdmin
    extra = 0
    autocomplete_fields = ["user"]
    verbose_name = "tenant admin"


@admin.register(Tenant)
class TenantModelAdmin(admin.ModelAdmin):
    list_display = ["name", "max_clusters", "max_servers", "created_at"]
    search_fields = ["name"]
    inlines = [TenantAdminInline]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamModelAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["name", "tenant__name"]
    inlines = [MembershipInline]

    def get_fields(self, request, obj=None):
        return ["tenant", "name"] if obj is None else ["tenant", "name", "group", "service_user"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["tenant", "name", "group", "service_user"]

    def save_model(self, request, obj, form, change):
        if change:
            return
        # A team needs its permission group and service account: the service creates them.
        created = services.create_team(obj.tenant, obj.name)
        obj.pk, obj.group_id, obj.service_user_id = created.pk, created.group_id, created.service_user_id
        obj._state.adding = False

    def has_delete_permission(self, request, obj=None):
        return False  # through the API (it checks the team is not a cluster's only admin team)


@admin.register(ApiToken)
class ApiTokenModelAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "team", "scope", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", "team__tenant"]
    search_fields = ["key", "name", "team__name"]
    fields = [
        "team",
        "name",
        "key",
        "scope",
        "expires_at",
        "allowed_networks",
        "clusters",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # tokens are created through the API or create_tenant, which show the secret once

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row stays for the audit trail

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        messages.info(request, f"{count} token(s) revoked.")


@admin.register(AuditEntry)
class AuditEntryModelAdmin(admin.ModelAdmin):
    list_display = ["created_at", "tenant", "actor", "action", "target", "result", "client_address"]
    list_filter = ["tenant", "result"]
    search_fields = ["actor", "action", "target"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PlatformState)
class PlatformStateModelAdmin(admin.ModelAdmin):
    list_display = ["paused", "reason", "changed_by", "changed_at"]
    readonly_fields = ["changed_by", "changed_at"]

    def has_add_permission(self, request):
        return not PlatformState.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        services.audit(
            actor=f"user:{request.user.username}",
            action="platform.pause" if obj.paused else "platform.resume",
            parameters={"reason": obj.reason},
            result="ok",
            client_address=request.META.get("REMOTE_ADDR"),
        )
        obj.changed_by = f"user:{request.user.username}"
        obj.changed_at = timezone.now()
        super().save_model(request, obj, form, change)

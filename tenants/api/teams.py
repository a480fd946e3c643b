"""`/api/v1/teams/`: a tenant's teams, their members and roles, and the clusters granted to them.

Everyone sees the teams they belong to (404 for others); tenant admins see and manage every team of
their tenant (403 for members who are not tenant admins).
"""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from controlplane.api.viewsets import AuditedViewSet
from tenants import services
from tenants.access import (
    CLUSTER_PERMISSIONS,
    can_manage_team,
    cluster_model,
    clusters_granted_to,
    visible_teams,
)
from tenants.api.serializers import (
    GrantSerializer,
    InvitationSerializer,
    MemberAddSerializer,
    MemberRoleSerializer,
    MemberSerializer,
    TeamCreateSerializer,
    TeamRenameSerializer,
    TeamSerializer,
)
from tenants.models import Membership, Tenant


class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AuditedViewSet):
    serializer_class = TeamSerializer

    def get_queryset(self):
        return visible_teams(self.actor).select_related("tenant").order_by("tenant__name", "name")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "actor": self.actor}

    def _managed_team(self):
        team = self.get_object()
        self.audit_target = team
        if not can_manage_team(self.actor, team):
            raise exceptions.PermissionDenied("Managing a team needs a tenant admin.")
        return team

    @extend_schema(request=TeamCreateSerializer, responses={201: TeamSerializer})
    def create(self, request):
        """Create a team in a tenant you administer."""
        serializer = TeamCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        admin_of = self.actor.admin_tenant_ids()
        if not admin_of:
            raise exceptions.PermissionDenied("Creating a team needs a tenant admin.")
        tenant_id = serializer.validated_data.get("tenant")
        if tenant_id is None:
            if len(admin_of) > 1:
                raise exceptions.ValidationError({"tenant": "required: you administer several tenants"})
            tenant_id = next(iter(admin_of))
        elif tenant_id not in admin_of:
            raise exceptions.ValidationError({"tenant": "not a tenant you administer"})
        team = services.create_team(Tenant.objects.get(pk=tenant_id), serializer.validated_data["name"])
        self.audit_target = team
        return Response(self.get_serializer(team).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TeamRenameSerializer, responses={200: TeamSerializer})
    def partial_update(self, request, pk=None):
        """Rename a team."""
        team = self._managed_team()
        serializer = TeamRenameSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        team = services.rename_team(team, serializer.validated_data["name"])
        return Response(self.get_serializer(team).data)

    def destroy(self, request, pk=None):
        """Delete a team with its tokens and grants (refused while it is a cluster's only admin team)."""
        services.delete_team(self._managed_team())
        return Response(status=status.HTTP_204_NO_CONTENT)

    # Members

    @extend_schema(methods=["GET"], responses={200: MemberSerializer(many=True)})
    @extend_schema(methods=["POST"], request=MemberAddSerializer, responses={201: InvitationSerializer})
    @action(detail=True, methods=["get", "post"], url_path="members", url_name="members")
    def members(self, request, pk=None):
        """List the team's members; invite one by email (they become a member when they accept: the answer
        is the same whether or not the address has an account)."""
        if request.method == "GET":
            team = self.get_object()
            memberships = (
                Membership.objects.filter(team=team).select_related("user").order_by("user__username")
            )
            page = self.paginate_queryset(memberships)
            return self.get_paginated_response(MemberSerializer(page, many=True).data)
        team = self._managed_team()
        serializer = MemberAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation, _ = services.invite_member(
            team,
            serializer.validated_data["email"],
            serializer.validated_data["role"],
            invited_by=self.actor.label(),
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["PATCH"], request=MemberRoleSerializer, responses={200: MemberSerializer})
    @extend_schema(methods=["DELETE"], responses={204: None})
    @action(detail=True, methods=["patch", "delete"], url_path=r"members/(?P<user_id>\d+)", url_name="member")
    def member(self, request, pk=None, user_id=None):
        """Change a member's role, or remove them from the team."""
        team = self._managed_team()
        membership = get_object_or_404(Membership.objects.select_related("user"), team=team, user_id=user_id)
        if request.method == "DELETE":
            services.remove_member(team, membership.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        serializer = MemberRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.add_member(team, membership.user, serializer.validated_data["role"])
        return Response(MemberSerializer(membership).data)

    # Cluster grants

    def _grants(self, team) -> list[dict]:
        grants: dict[int, dict] = {}
        for perm in CLUSTER_PERMISSIONS:
            for cluster in clusters_granted_to(team, perm):
                entry = grants.setdefault(
                    cluster.pk, {"cluster": cluster.pk, "cluster_name": cluster.name, "permissions": []}
                )
                entry["permissions"].append(perm)
        return [grants[k] for k in sorted(grants)]

    @extend_schema(methods=["GET"], responses={200: GrantSerializer(many=True)})
    @extend_schema(methods=["POST"], request=GrantSerializer, responses={200: GrantSerializer})
    @action(detail=True, methods=["get", "post"], url_path="grants", url_name="grants")
    def grants(self, request, pk=None):
        """The clusters granted to the team, with the permissions; grant one of the tenant's clusters."""
        if request.method == "GET":
            return Response(self._grants(self.get_object()))
        Cluster = cluster_model()  # noqa: N806 - a model class

        team = self._managed_team()
        serializer = GrantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cluster = Cluster.objects.filter(
            pk=serializer.validated_data["cluster"], tenant_id=team.tenant_id
        ).first()
        if cluster is None:
            raise exceptions.ValidationError({"cluster": "no such cluster in the team's tenant"})
        with transaction.atomic():
            services.revoke_cluster(team, cluster)
            services.grant_cluster(team, cluster, serializer.validated_data["permissions"])
        return Response(next(g for g in self._grants(team) if g["cluster"] == cluster.pk))

    @extend_schema(responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"grants/(?P<cluster_id>\d+)", url_name="grant")
    def grant(self, request, pk=None, cluster_id=None):
        """Take every permission on a cluster back from the team."""
        team = self._managed_team()
        cluster = get_object_or_404(clusters_granted_to(team), pk=cluster_id)
        services.revoke_cluster(team, cluster)
        return Response(status=status.HTTP_204_NO_CONTENT)

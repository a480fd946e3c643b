"""Tenants, teams, members, grants, quotas, the platform pause, session login and create_tenant."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from guardian.models import UserObjectPermission
from rest_framework.test import APIClient

from tenants.access import ADMIN, OPERATE, VIEW, actor_for, clusters_for, has_cluster_perm
from tenants.models import ApiToken, AuditEntry, LoginFailure, Membership, Role, Team
from tenants.platform import platform_paused
from tenants.quotas import QuotaExceeded, check_quota
from tenants.services import grant_cluster

pytestmark = pytest.mark.django_db


def post(client, url, body=None, **extra):
    return client.post(url, data=json.dumps(body or {}), content_type="application/json", **extra)


def patch(client, url, body):
    return client.patch(url, data=json.dumps(body), content_type="application/json")


# create_tenant


def test_create_tenant_prints_a_working_token_on_its_last_line():
    out = io.StringIO()
    call_command(
        "create_tenant",
        "initech",
        "--team",
        "ops",
        "--user",
        "pat@initech.example",
        "--token-scope",
        "admin",
        stdout=out,
    )
    lines = out.getvalue().strip().splitlines()
    assert any(line.startswith("password: ") for line in lines), "a generated password is printed"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {lines[-1]}")
    me = client.get("/api/v1/auth/me/").json()
    assert me["teams"] == [{"id": me["teams"][0]["id"], "name": "ops", "tenant": "initech", "role": "admin"}]
    assert me["token"]["scope"] == "admin"
    assert AuditEntry.objects.filter(action="tenant.create_tenant", tenant__name="initech").exists()


def test_create_tenant_reuses_what_exists_and_makes_the_user_tenant_admin():
    for _ in range(2):
        call_command(
            "create_tenant",
            "initech",
            "--team",
            "ops",
            "--user",
            "pat@initech.example",
            "--password",
            "a-long-password-1",
            "--token-scope",
            "read",
            stdout=io.StringIO(),
        )
    assert Team.objects.filter(tenant__name="initech").count() == 1
    assert ApiToken.objects.filter(team__tenant__name="initech").count() == 2
    user = get_user_model().objects.get(username="pat@initech.example")
    assert user.password.startswith("argon2$"), "passwords are hashed with argon2"
    assert actor_for(user).admin_tenant_ids() == {Team.objects.get(name="ops").tenant_id}


def test_create_tenant_refuses_bad_names():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="tenant name"):
        call_command(
            "create_tenant", "Bad Name!", "--team", "ops", "--user", "p@x.example", "--token-scope", "read"
        )


# Permission model


def test_roles_and_scopes_give_exactly_their_cluster_permissions(world):
    expected = {
        "alice": {VIEW, OPERATE, ADMIN},
        "oscar": {VIEW, OPERATE},
        "bob": {VIEW},
        "token:admin": {VIEW, OPERATE, ADMIN},
        "token:operate": {VIEW, OPERATE},
        "token:read": {VIEW},
        "charlie": set(),
        "root": set(),
    }
    for who, perms in expected.items():
        if who.startswith("token:"):
            row = world.token_rows[who[6:]]
            actor = actor_for(row.team.service_user, row)
        else:
            actor = actor_for(world.person(who))
        held = {perm for perm in (VIEW, OPERATE, ADMIN) if has_cluster_perm(actor, world.cluster_x, perm)}
        assert held == perms, who


def test_nobody_holds_global_permissions_and_team_groups_have_no_members(world):
    client = world.client("alice")
    post(client, "/api/v1/teams/", {"name": "newteam"})
    post(client, f"/api/v1/teams/{world.team_a.id}/members/", {"email": "new@acme.example", "role": "admin"})
    users = get_user_model().objects.filter(is_superuser=False)
    assert not Permission.objects.filter(user__in=users).exists()
    team_groups = Group.objects.filter(team__isnull=False)
    assert not Permission.objects.filter(group__in=team_groups).exists()
    assert not users.filter(groups__in=team_groups).exists()
    assert not UserObjectPermission.objects.exists(), "object permissions go to team groups only"
    # So guardian's own has_perm answers no for everyone, even a team admin: ask tenants.access instead.
    assert not world.alice.has_perm("clusters.admin_cluster", world.cluster_x)


def test_a_stray_grant_across_tenants_gives_nothing(world):
    from guardian.shortcuts import assign_perm

    assign_perm("clusters.view_cluster", world.team_b.group, world.cluster_x)  # bypassing grant_cluster
    assert not clusters_for(actor_for(world.charlie)).filter(pk=world.cluster_x.pk).exists()
    with pytest.raises(Exception, match="own tenant"):
        grant_cluster(world.team_b, world.cluster_x)


# Teams, members, grants


def test_tenant_admin_manages_teams_and_members(world):
    alice = world.client("alice")
    created = post(alice, "/api/v1/teams/", {"name": "dba"})
    assert created.status_code == 201, created.content
    team_id = created.json()["id"]
    from tenants.services import accept_invitation, invite_member

    added = post(
        alice, f"/api/v1/teams/{team_id}/members/", {"email": "Dora@Acme.example", "role": "operator"}
    )
    assert added.status_code == 201, added.content
    body = added.json()
    assert set(body) == {"id", "email", "role", "status"}
    assert body["email"] == "dora@acme.example" and body["role"] == "operator" and body["status"] == "invited"
    assert not get_user_model().objects.filter(username="dora@acme.example").exists(), "nobody until accepted"
    _, secret = invite_member(
        Team.objects.get(pk=team_id), "dora@acme.example", "operator", invited_by="test"
    )
    accept_invitation(secret, None, "dora-chose-this-password-1")
    dora = get_user_model().objects.get(username="dora@acme.example")
    assert dora.check_password("dora-chose-this-password-1")
    assert (
        patch(alice, f"/api/v1/teams/{team_id}/members/{dora.id}/", {"role": "admin"}).json()["role"]
        == "admin"
    )
    members = alice.get(f"/api/v1/teams/{team_id}/members/").json()["results"]
    assert [(m["email"], m["role"]) for m in members] == [("dora@acme.example", "admin")]
    assert alice.delete(f"/api/v1/teams/{team_id}/members/{dora.id}/").status_code == 204
    assert not Membership.objects.filter(team_id=team_id).exists()
    assert patch(alice, f"/api/v1/teams/{team_id}/", {"name": "dbas"}).json()["name"] == "dbas"
    assert alice.delete(f"/api/v1/teams/{team_id}/").status_code == 204


def test_bad_team_and_member_input_is_a_clear_400(world):
    alice = world.client("alice")
    bad_name = post(alice, "/api/v1/teams/", {"name": "Not A Name"})
    assert bad_name.status_code == 400 and bad_name.json()["code"] == "invalid"
    duplicate = post(alice, "/api/v1/teams/", {"name": "ops"})
    assert duplicate.status_code == 400 and "already has a team" in duplicate.json()["detail"]
    given = post(
        alice, f"/api/v1/teams/{world.team_a.id}/members/", {"email": "e@acme.example", "password": "short"}
    )
    assert given.status_code == 400 and "password" in given.json()["errors"]
    role = post(
        alice, f"/api/v1/teams/{world.team_a.id}/members/", {"email": "e@acme.example", "role": "god"}
    )
    assert role.status_code == 400


def test_members_see_only_their_teams(world):
    bob_teams = world.client("bob").get("/api/v1/teams/").json()["results"]
    assert [(t["name"], t["your_role"]) for t in bob_teams] == [("ops", "viewer")]
    charlie_teams = world.client("charlie").get("/api/v1/teams/").json()["results"]
    assert [t["name"] for t in charlie_teams] == ["dev"]


def test_deleting_a_team_is_refused_while_it_is_a_clusters_only_admin(world):
    alice = world.client("alice")
    refused = alice.delete(f"/api/v1/teams/{world.team_a.id}/")
    assert refused.status_code == 400 and "only admin of prod, staging" in refused.json()["detail"]
    other = Team.objects.get(pk=post(alice, "/api/v1/teams/", {"name": "heirs"}).json()["id"])
    for cluster in (world.cluster_x, world.cluster_y):
        assert post(alice, f"/api/v1/teams/{other.id}/grants/", {"cluster": cluster.id}).status_code == 200
    group_id, service_user_id = world.team_a.group_id, world.team_a.service_user_id
    assert alice.delete(f"/api/v1/teams/{world.team_a.id}/").status_code == 204
    assert not Group.objects.filter(pk=group_id).exists()
    assert not get_user_model().objects.filter(pk=service_user_id).exists()
    assert world.client("token:admin").get("/api/v1/auth/me/").status_code == 401, "its tokens went with it"


def test_grants_decide_what_a_team_sees(world):
    alice = world.client("alice")
    team_id = post(alice, "/api/v1/teams/", {"name": "readers"}).json()["id"]
    from tenants.services import accept_invitation, invite_member

    _, secret = invite_member(Team.objects.get(pk=team_id), "r@acme.example", "admin", invited_by="test")
    accept_invitation(secret, None, "reader-password-long-1")
    reader = APIClient()
    reader.force_login(get_user_model().objects.get(username="r@acme.example"))
    assert reader.get(f"/api/v1/clusters/{world.cluster_x.id}/").status_code == 404
    granted = post(
        alice,
        f"/api/v1/teams/{team_id}/grants/",
        {"cluster": world.cluster_x.id, "permissions": ["view_cluster"]},
    )
    assert granted.json() == {
        "cluster": world.cluster_x.id,
        "cluster_name": "prod",
        "permissions": ["view_cluster"],
    }
    assert reader.get(f"/api/v1/clusters/{world.cluster_x.id}/").status_code == 200
    assert (
        patch(
            reader, f"/api/v1/clusters/{world.cluster_x.id}/", {"settings": {"tick_seconds": 2}}
        ).status_code
        == 403
    )
    assert alice.delete(f"/api/v1/teams/{team_id}/grants/{world.cluster_x.id}/").status_code == 204
    assert reader.get(f"/api/v1/clusters/{world.cluster_x.id}/").status_code == 404
    other_tenant = post(alice, f"/api/v1/teams/{team_id}/grants/", {"cluster": world.cluster_z.id})
    assert other_tenant.status_code == 400, "another tenant's cluster cannot be granted (nor seen)"


# Quotas


def test_quota_refuses_with_the_limit_in_the_message(world):
    world.tenant_a.max_clusters = 2
    world.tenant_a.max_servers = 5
    world.tenant_a.save()
    check_quota(world.tenant_a, add_servers=1)
    with pytest.raises(QuotaExceeded, match="at most 2 clusters"):
        check_quota(world.tenant_a, add_clusters=1)
    with pytest.raises(QuotaExceeded, match="at most 5 servers"):
        check_quota(world.tenant_a, add_servers=2)


def test_registering_past_the_quota_is_a_403_quota_exceeded(world):
    world.tenant_a.max_clusters = 2
    world.tenant_a.save()
    response = post(
        world.client("token:admin"),
        "/api/v1/clusters/",
        {
            "name": "third",
            "servers": [{"host": "127.0.0.1", "port": 9}],
            "credentials": {"user": "dbpilot", "password": "quota-test-password"},
        },
    )
    assert response.status_code == 403
    assert response.json()["code"] == "quota_exceeded" and "at most 2 clusters" in response.json()["detail"]


def test_registration_checks_the_quota_again_with_the_tenant_locked(world):
    """Two registrations racing for the last place: the second one's early check passed before the first
    committed; the check inside the creating transaction still refuses it, and nothing is created."""
    from clusters.models import Cluster
    from clusters.services import registration

    parsed = registration.parse_request(
        world.tenant_a,
        {
            "name": "racer",
            "servers": [{"host": "127.0.0.1", "port": 9}],
            "credentials": {"user": "dbpilot", "password": "quota-test-password"},
        },
    )
    world.tenant_a.max_clusters = Cluster.objects.filter(tenant=world.tenant_a).count()
    world.tenant_a.save()
    with pytest.raises(QuotaExceeded, match="at most"):
        registration.register_cluster(world.team_a, parsed, {}, requested_by="test")
    assert not Cluster.objects.filter(name="racer").exists()


# Platform pause


def test_operators_pause_and_resume_the_platform(world):
    root = world.client("root")
    assert not platform_paused()
    paused = post(root, "/api/v1/platform/pause/", {"reason": "upgrading dbpilot"})
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert platform_paused()
    shown = world.client("token:read").get("/api/v1/platform/").json()
    assert (
        shown["paused"] is True
        and shown["reason"] == "upgrading dbpilot"
        and shown["changed_by"] == world.label("root")
    )
    assert post(world.client("alice"), "/api/v1/platform/resume/").status_code == 403
    assert post(root, "/api/v1/platform/resume/").json()["paused"] is False
    assert not platform_paused()
    assert list(
        AuditEntry.objects.filter(action__startswith="platform.").values_list("action", flat=True)
    ) == [
        "platform.resume",
        "platform.resume",
        "platform.pause",
    ]  # newest first; alice's refused try included


# Session login


@pytest.fixture
def alice_password(world):
    world.alice.set_password("alice-long-password")
    world.alice.save()
    return "alice-long-password"


def csrf_client() -> tuple[APIClient, str]:
    client = APIClient(enforce_csrf_checks=True)
    token = client.get("/api/v1/auth/csrf/").json()["csrf_token"]
    return client, token


def test_login_sets_a_session_and_later_writes_need_the_csrf_token(world, alice_password):
    client, csrf = csrf_client()
    assert (
        post(
            client, "/api/v1/auth/login/", {"email": "alice@acme.example", "password": alice_password}
        ).status_code
        == 403
    ), "login itself is CSRF-protected"
    login = post(
        client,
        "/api/v1/auth/login/",
        {"email": "Alice@Acme.example", "password": alice_password},
        HTTP_X_CSRFTOKEN=csrf,
    )
    assert login.status_code == 200, login.content
    me = login.json()
    assert me["email"] == "alice@acme.example" and me["is_tenant_admin"] and not me["is_operator"]
    assert me["tenants"] == [{"id": world.tenant_a.id, "name": "acme", "is_admin": True}]
    assert {"id": world.team_a.id, "name": "ops", "tenant": "acme", "role": "admin"} in me["teams"]
    assert client.get("/api/v1/auth/me/").json()["email"] == "alice@acme.example"
    csrf = client.cookies["csrftoken"].value  # login rotates the token
    without = post(client, "/api/v1/teams/", {"name": "viaportal"})
    assert without.status_code == 403 and "CSRF" in without.json()["detail"]
    assert post(client, "/api/v1/teams/", {"name": "viaportal"}, HTTP_X_CSRFTOKEN=csrf).status_code == 201
    assert post(client, "/api/v1/auth/logout/", HTTP_X_CSRFTOKEN=csrf).status_code == 204
    assert client.get("/api/v1/auth/me/").status_code == 401
    actions = list(AuditEntry.objects.filter(actor="user:alice@acme.example").values_list("action", "result"))
    assert ("auth.login", "ok") in actions and ("auth.logout", "ok") in actions


def test_wrong_password_is_a_400_and_is_audited_for_a_known_account(world, alice_password):
    response = post(
        APIClient(), "/api/v1/auth/login/", {"email": "alice@acme.example", "password": "wrong-password"}
    )
    assert response.status_code == 400 and response.json() == {
        "detail": "Invalid email or password.",
        "code": "invalid_credentials",
    }
    entry = AuditEntry.objects.get(action="auth.login")
    assert (
        entry.result == "failed"
        and entry.tenant == world.tenant_a
        and "wrong-password" not in json.dumps(entry.parameters)
    )


def test_failed_logins_are_rate_limited_per_account(world, alice_password, settings):
    settings.DBPILOT_LOGIN_MAX_FAILURES = 3
    for n in range(3):
        bad = post(
            APIClient(REMOTE_ADDR=f"192.0.2.{n}"),
            "/api/v1/auth/login/",
            {"email": "alice@acme.example", "password": "wrong-password"},
        )
        assert bad.status_code == 400
    locked = post(
        APIClient(REMOTE_ADDR="192.0.2.99"),
        "/api/v1/auth/login/",
        {"email": "alice@acme.example", "password": alice_password},
    )
    assert locked.status_code == 429, "even the right password waits while the account is locked"
    assert locked.json()["code"] == "throttled" and "Too many failed logins" in locked.json()["detail"]
    assert 0 < int(locked["Retry-After"]) <= 300
    assert not LoginFailure.objects.filter(account_digest__icontains="alice").exists(), (
        "the email is not stored"
    )


def test_failed_logins_are_rate_limited_per_address(world, settings):
    settings.DBPILOT_LOGIN_MAX_FAILURES = 3
    client = APIClient(REMOTE_ADDR="198.51.100.7")
    for n in range(3):
        post(client, "/api/v1/auth/login/", {"email": f"guess{n}@acme.example", "password": "wrong-password"})
    assert (
        post(client, "/api/v1/auth/login/", {"email": "other@acme.example", "password": "x"}).status_code
        == 429
    )
    elsewhere = post(
        APIClient(REMOTE_ADDR="198.51.100.8"),
        "/api/v1/auth/login/",
        {"email": "other@acme.example", "password": "x"},
    )
    assert elsewhere.status_code == 400


def test_a_team_service_account_never_gets_a_session(world):
    client = APIClient()
    client.force_login(world.team_a.service_user)
    assert client.get("/api/v1/auth/me/").status_code == 401


def test_me_describes_a_token(world):
    me = world.client("token:operate").get("/api/v1/auth/me/").json()
    assert me["email"] is None and me["is_tenant_admin"] is False
    assert me["teams"] == [{"id": world.team_a.id, "name": "ops", "tenant": "acme", "role": Role.OPERATOR}]
    assert me["token"] == {
        "id": world.token_rows["operate"].id,
        "prefix": world.token_rows["operate"].prefix,
        "scope": "operate",
        "team": world.team_a.id,
    }


# The Django admin (platform operators)


def test_operators_administer_tenants_in_the_django_admin(world):
    from django.test import Client

    admin = Client()
    admin.force_login(world.root)
    for page in ("tenant", "team", "apitoken", "auditentry", "platformstate"):
        assert admin.get(f"/admin/tenants/{page}/").status_code == 200, page
    created = admin.post(
        "/admin/tenants/team/add/",
        {
            "tenant": world.tenant_b.id,
            "name": "sre",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert created.status_code == 302, created.content[:500]
    team = Team.objects.get(tenant=world.tenant_b, name="sre")
    assert team.group.name == f"team:{world.tenant_b.id}/sre" and not team.service_user.has_usable_password()
    entry = AuditEntry.objects.create(actor="system:test", action="test.admin")
    assert admin.get(f"/admin/tenants/auditentry/{entry.id}/delete/").status_code == 403
    revoke = admin.post(
        "/admin/tenants/apitoken/", {"action": "revoke", "_selected_action": [world.token_rows["read"].id]}
    )
    assert revoke.status_code == 302
    assert world.client("token:read").get("/api/v1/auth/me/").status_code == 401

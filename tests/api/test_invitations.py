"""Adding a member is an invitation: no user discovery across tenants, nobody pulled into a team without
accepting, never a password in the answer (issue 14, item 5); removing a member revokes their tokens."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from rest_framework.test import APIClient

from tenants.models import ApiToken, Invitation, Membership

pytestmark = [pytest.mark.api, pytest.mark.django_db]


def _invite(world, email, role="viewer", capture=None):
    response = world.client("alice").post(
        f"/api/v1/teams/{world.team_a.id}/members/", {"email": email, "role": role}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def _secret_from_mail() -> str:
    body = mail.outbox[-1].body
    return body.split('{"secret": "', 1)[1].split('"', 1)[0]


def test_the_answer_is_the_same_for_an_existing_account_elsewhere_and_a_new_address(world):
    existing = _invite(world, "charlie@globex.example")  # tenant B's admin
    new = _invite(world, "nobody-yet@acme.example")
    assert set(existing) == set(new) == {"id", "email", "role", "status"}
    assert existing["status"] == new["status"] == "invited"
    assert "password" not in existing and "password" not in new
    assert not Membership.objects.filter(team=world.team_a, user=world.charlie).exists(), "no consent yet"
    assert not get_user_model().objects.filter(username="nobody-yet@acme.example").exists()


def test_a_new_person_accepts_by_choosing_a_password(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(world, "dora@acme.example", "operator")
    secret = _secret_from_mail()
    anonymous = APIClient()
    weak = anonymous.post(
        "/api/v1/invitations/accept/", {"secret": secret, "password": "short"}, format="json"
    )
    assert weak.status_code == 400 and "password" in weak.json()["errors"]
    accepted = anonymous.post(
        "/api/v1/invitations/accept/", {"secret": secret, "password": "dora-long-password-1"}, format="json"
    )
    assert accepted.status_code == 200, accepted.content
    assert accepted.json() == {
        "team": world.team_a.id,
        "team_name": "ops",
        "role": "operator",
        "email": "dora@acme.example",
    }
    dora = get_user_model().objects.get(username="dora@acme.example")
    assert dora.check_password("dora-long-password-1")
    again = anonymous.post(
        "/api/v1/invitations/accept/", {"secret": secret, "password": "dora-long-password-1"}, format="json"
    )
    assert again.status_code == 400 and "already used" in again.json()["detail"]


def test_an_existing_user_accepts_only_when_logged_in_as_that_address(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(world, "charlie@globex.example", "viewer")
    secret = _secret_from_mail()
    anonymous = APIClient()
    refused = anonymous.post(
        "/api/v1/invitations/accept/", {"secret": secret, "password": "take-over-attempt-1"}, format="json"
    )
    assert refused.status_code == 400 and "log in as" in refused.json()["detail"]
    assert (
        world.client("bob").post("/api/v1/invitations/accept/", {"secret": secret}, format="json").status_code
        == 400
    )
    assert (
        world.client("token:tenant_b")
        .post("/api/v1/invitations/accept/", {"secret": secret}, format="json")
        .status_code
        == 400
    )
    accepted = world.client("charlie").post("/api/v1/invitations/accept/", {"secret": secret}, format="json")
    assert accepted.status_code == 200
    assert Membership.objects.get(team=world.team_a, user=world.charlie).role == "viewer"
    assert not world.charlie.check_password("take-over-attempt-1")


def test_operators_print_a_new_link_without_a_mail_server(world):
    from io import StringIO

    from django.core.management import call_command

    _invite(world, "eve@acme.example")
    out = StringIO()
    call_command("invitation_link", "eve@acme.example", stdout=out)
    secret = out.getvalue().strip().splitlines()[-1]
    accepted = APIClient().post(
        "/api/v1/invitations/accept/", {"secret": secret, "password": "eve-long-password-1"}, format="json"
    )
    assert accepted.status_code == 200
    assert Invitation.objects.get(email="eve@acme.example").status == "accepted"


def test_removing_a_member_revokes_the_tokens_they_created(world):
    from tenants.services import add_member, issue_token

    add_member(world.team_a, world.oscar, "admin")
    token, _ = issue_token(world.team_a, "read", name="oscars", created_by=world.oscar)
    others = ApiToken.objects.filter(team=world.team_a, revoked_at__isnull=True).exclude(pk=token.pk).count()
    response = world.client("alice").delete(f"/api/v1/teams/{world.team_a.id}/members/{world.oscar.id}/")
    assert response.status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert ApiToken.objects.filter(team=world.team_a, revoked_at__isnull=True).count() == others

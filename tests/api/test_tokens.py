"""Team API tokens: shown once, stored as a peppered HMAC, scoped, expiring, network- and
cluster-restricted, revocable, and never broader than the token that creates them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tenants import tokens as token_format
from tenants.models import ApiToken, Role
from tenants.services import add_member, issue_token

pytestmark = pytest.mark.django_db


def post(client, url, body=None):
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def bearer_client(bearer: str, **defaults) -> APIClient:
    client = APIClient(**defaults)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {bearer}")
    return client


def test_the_secret_is_shown_once_and_stored_only_as_an_hmac(world):
    alice = world.client("alice")
    created = post(alice, "/api/v1/tokens/", {"team": world.team_a.id, "scope": "operate", "name": "ci"})
    assert created.status_code == 201, created.content
    body = created.json()
    bearer = body["token"]
    key, secret = token_format.parse(bearer)
    assert body["prefix"] == f"dbp_{key}" and body["scope"] == "operate" and body["active"] is True
    row = ApiToken.objects.get(pk=body["id"])
    assert row.secret_hmac != secret and secret not in row.secret_hmac and len(row.secret_hmac) == 64
    listed = alice.get("/api/v1/tokens/").content.decode()
    assert secret not in listed and '"token"' not in listed
    assert secret not in alice.get(f"/api/v1/tokens/{row.id}/").content.decode()
    assert bearer_client(bearer).get(f"/api/v1/clusters/{world.cluster_x.id}/").status_code == 200


def test_a_changed_pepper_invalidates_every_token(world, settings):
    settings.DBPILOT_TOKEN_PEPPER = "another-pepper"
    assert world.client("token:admin").get("/api/v1/auth/me/").status_code == 401


@pytest.mark.parametrize("how", ["delete", "post"])
def test_a_revoked_token_stops_working_at_once(world, how):
    target = world.token_rows["operate"]
    alice = world.client("alice")
    client = world.client("token:operate")
    assert client.get("/api/v1/clusters/").status_code == 200
    if how == "delete":
        assert alice.delete(f"/api/v1/tokens/{target.id}/").status_code == 204
    else:
        revoked = post(alice, f"/api/v1/tokens/{target.id}/revoke/")
        assert (
            revoked.status_code == 200 and revoked.json()["active"] is False and revoked.json()["revoked_at"]
        )
    refused = client.get("/api/v1/clusters/")
    assert refused.status_code == 401 and refused.json() == {
        "detail": "Token revoked.",
        "code": "authentication_failed",
    }
    assert refused["WWW-Authenticate"] == "Bearer"


def test_expired_malformed_unknown_and_url_tokens_are_401(world):
    assert world.client("token:expired").get("/api/v1/clusters/").json()["detail"] == "Token expired."
    assert bearer_client("not-a-token").get("/api/v1/clusters/").status_code == 401
    key = world.token_rows["admin"].key
    assert (
        bearer_client(f"dbp_{key}_{'x' * 43}").get("/api/v1/clusters/").json()["detail"] == "Invalid token."
    )
    assert (
        bearer_client(f"dbp_000000000000_{'x' * 43}").get("/api/v1/clusters/").json()["detail"]
        == "Invalid token."
    )
    in_url = APIClient().get(
        f"/api/v1/clusters/?token={world.tokens['admin']}&access_token={world.tokens['admin']}"
    )
    assert in_url.status_code == 401, "a token in the URL is never accepted"


def test_allowed_networks_bound_where_a_token_works(world):
    alice = world.client("alice")
    body = post(
        alice,
        "/api/v1/tokens/",
        {"team": world.team_a.id, "allowed_networks": ["192.0.2.0/24", "2001:db8::/32"]},
    ).json()
    assert body["allowed_networks"] == ["192.0.2.0/24", "2001:db8::/32"]
    assert bearer_client(body["token"], REMOTE_ADDR="192.0.2.55").get("/api/v1/clusters/").status_code == 200
    assert bearer_client(body["token"], REMOTE_ADDR="2001:db8::5").get("/api/v1/clusters/").status_code == 200
    outside = bearer_client(body["token"], REMOTE_ADDR="198.51.100.1").get("/api/v1/clusters/")
    assert outside.status_code == 401 and "address" in outside.json()["detail"]
    bad = post(alice, "/api/v1/tokens/", {"team": world.team_a.id, "allowed_networks": ["192.0.2.0/33"]})
    assert bad.status_code == 400 and "allowed_networks" in bad.json()["detail"]


def test_a_cluster_restricted_token_sees_only_its_clusters(world):
    client = world.client("token:restricted")
    listed = [c["id"] for c in client.get("/api/v1/clusters/").json()["results"]]
    assert listed == [world.cluster_y.id]
    assert client.get(f"/api/v1/clusters/{world.cluster_y.id}/").status_code == 200
    assert client.get(f"/api/v1/clusters/{world.cluster_x.id}/").status_code == 404
    refused = post(
        client,
        "/api/v1/clusters/",
        {
            "name": "new",
            "servers": [{"host": "127.0.0.1", "port": 9}],
            "credentials": {"user": "u", "password": "restricted-pw-1"},
        },
    )
    assert refused.status_code == 403, "a restricted token cannot create clusters it could not see"


def test_a_restriction_names_only_the_teams_clusters(world):
    alice = world.client("alice")
    foreign = post(
        alice, "/api/v1/tokens/", {"team": world.team_a.id, "clusters": [world.cluster_z.id, 999999]}
    )
    assert foreign.status_code == 400
    assert (
        foreign.json()["detail"]
        == f"clusters: not found among the team's clusters: {world.cluster_z.id}, 999999"
    )
    ok = post(alice, "/api/v1/tokens/", {"team": world.team_a.id, "clusters": [world.cluster_x.id]})
    assert ok.status_code == 201 and ok.json()["clusters"] == [world.cluster_x.id]


def test_bad_token_requests_are_a_clear_400(world):
    alice = world.client("alice")
    past = post(alice, "/api/v1/tokens/", {"team": world.team_a.id, "expires_at": "2001-01-01T00:00:00Z"})
    assert past.status_code == 400 and "future" in past.json()["detail"]
    scope = post(alice, "/api/v1/tokens/", {"team": world.team_a.id, "scope": "root"})
    assert scope.status_code == 400 and scope.json()["code"] == "invalid"
    assert post(alice, "/api/v1/tokens/", {"team": "ops"}).status_code == 400
    huge = post(alice, "/api/v1/tokens/", {"team": world.team_a.id, "clusters": [2**70]})
    assert huge.status_code == 400, "an id beyond 64 bits is bad input, not a database overflow"


def test_last_used_is_written_at_most_once_a_minute(world):
    row = world.token_rows["read"]
    client = world.client("token:read")
    client.get("/api/v1/clusters/")
    row.refresh_from_db()
    first = row.last_used_at
    assert first is not None
    client.get("/api/v1/clusters/")
    row.refresh_from_db()
    assert row.last_used_at == first
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    client.get("/api/v1/clusters/")
    row.refresh_from_db()
    assert row.last_used_at > first


def test_a_team_admin_who_is_not_tenant_admin_manages_only_their_teams_tokens(world):
    add_member(world.team_a, world.bob, Role.ADMIN)
    bob = world.client("bob")
    assert post(bob, "/api/v1/tokens/", {"scope": "admin"}).status_code == 201, (
        "their one team is the default"
    )
    assert post(bob, "/api/v1/tokens/", {"team": world.team_b.id}).status_code == 400
    assert bob.delete(f"/api/v1/tokens/{world.token_rows['read'].id}/").status_code == 204
    assert post(bob, "/api/v1/teams/", {"name": "mine"}).status_code == 403, "teams are for tenant admins"


def test_a_token_creates_only_tokens_no_broader_than_itself(world):
    assert post(world.client("token:operate"), "/api/v1/tokens/", {"scope": "read"}).status_code == 403
    restricted = world.client("token:restricted")
    broader = post(restricted, "/api/v1/tokens/", {"team": world.team_a.id, "scope": "read"})
    assert broader.status_code == 403 and "restricted" in broader.json()["detail"]
    narrower = post(
        restricted,
        "/api/v1/tokens/",
        {"team": world.team_a.id, "scope": "read", "clusters": [world.cluster_y.id]},
    )
    assert narrower.status_code == 201
    limited, bearer = issue_token(
        world.team_a, "admin", allowed_networks=["127.0.0.0/8"], expires_at=timezone.now() + timedelta(days=1)
    )
    client = bearer_client(bearer)
    assert post(client, "/api/v1/tokens/", {"team": world.team_a.id}).status_code == 403
    within = {
        "team": world.team_a.id,
        "allowed_networks": ["127.0.0.1/32"],
        "expires_at": (timezone.now() + timedelta(hours=1)).isoformat(),
    }
    assert post(client, "/api/v1/tokens/", within).status_code == 201
    later = dict(within, expires_at=(timezone.now() + timedelta(days=3)).isoformat())
    assert post(client, "/api/v1/tokens/", later).status_code == 403


def test_the_token_list_filters_by_team_and_scope_without_revealing_other_teams(world):
    alice = world.client("alice")
    reads = alice.get(f"/api/v1/tokens/?team={world.team_a.id}&scope=read").json()["results"]
    assert [t["id"] for t in reads] == [world.token_rows["read"].id]
    assert alice.get(f"/api/v1/tokens/?team={world.team_b.id}").json()["results"] == []
    assert alice.get("/api/v1/tokens/?team=999999").json()["results"] == []

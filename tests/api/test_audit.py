"""The audit log: append-only, written for every mutating request and job, scrubbed of secrets,
readable and filterable by tenant admins only."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tenants.audit import audit, audit_job, scrub
from tenants.models import AuditEntry, AuditLogIsAppendOnly

pytestmark = pytest.mark.django_db


def post(client, url, body=None):
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def test_entries_cannot_be_changed_or_deleted_through_the_application(world):
    entry = audit(actor="system:test", action="test.append_only", tenant=world.tenant_a)
    entry.result = "tampered"
    with pytest.raises(AuditLogIsAppendOnly):
        entry.save()
    with pytest.raises(AuditLogIsAppendOnly):
        entry.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(result="tampered")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.get(pk=entry.pk).result == ""


def test_deleting_a_user_keeps_their_entries(world):
    post(world.client("bob"), f"/api/v1/teams/{world.team_a.id}/members/", {"email": "x@acme.example"})
    world.bob.delete()
    entry = AuditEntry.objects.get(actor="user:bob@acme.example")
    assert entry.actor_user is None and entry.result == "403"


def test_a_mutating_request_records_who_what_target_result_and_no_secret(world):
    # A password is refused here (the invited person sets their own), and the refusal is audited, scrubbed.
    response = post(
        world.client("alice"),
        f"/api/v1/teams/{world.team_a.id}/members/",
        {"email": "new@acme.example", "role": "viewer", "password": "audit-secret-password-1"},
    )
    assert response.status_code == 400
    entry = AuditEntry.objects.get(action="team.members")
    assert entry.actor == "user:alice@acme.example" and entry.actor_user == world.alice
    assert entry.tenant == world.tenant_a and entry.target == f"team:{world.team_a.id}"
    assert entry.result == "400" and entry.client_address == "127.0.0.1"
    assert entry.parameters == {"email": "new@acme.example", "role": "viewer", "password": "***"}


def test_token_actions_name_the_token_and_its_tenant(world):
    post(
        world.client("token:operate"),
        f"/api/v1/clusters/{world.cluster_x.id}/servers/{world.cluster_x.servers.first().id}/maintenance/",
        {"on": True},
    )
    entry = AuditEntry.objects.get(action="cluster.maintenance")
    assert entry.actor == world.label("token:operate") and entry.tenant == world.tenant_a
    assert entry.target == f"cluster:{world.cluster_x.id}" and entry.result == "200"


def test_a_refused_request_is_audited_too(world):
    response = post(world.client("token:read"), f"/api/v1/tokens/{world.token_rows['admin'].id}/revoke/")
    assert response.status_code == 403
    entry = AuditEntry.objects.get(action="token.revoke")
    assert entry.result == "403" and entry.tenant == world.tenant_a


def test_jobs_are_audited_with_scrubbed_parameters(world):
    job = world.job_x
    job.params = {"candidate": 7, "credentials": {"user": "u", "password": "job-secret-password"}}
    entry = audit_job(job, "system:monitoring")
    assert (
        entry.action == "job.switchover" and entry.target == f"job:{job.pk}" and entry.result == "succeeded"
    )
    assert entry.tenant == world.tenant_a and entry.actor == "system:monitoring"
    assert entry.parameters["params"] == {"candidate": 7, "credentials": "***"}
    assert "job-secret-password" not in json.dumps(entry.parameters)


def test_scrub_finds_secrets_at_any_depth_and_in_strings():
    bearer = "dbp_0123456789ab_" + "s" * 43
    raw = {
        "name": "prod",
        "routes": [
            {"kind": "powerdns", "api_key": "pdns-key", "api_url": "http://admin:hunter22@127.0.0.1:8081/"}
        ],
        "health_key": "hk",
        "token_scope": "read",
        "note": f"use {bearer}",
        "settings": {"tls_ca": "x"},
    }
    clean = scrub(raw)
    assert clean["routes"][0]["api_key"] == "***" and clean["health_key"] == "***"
    assert clean["routes"][0]["api_url"] == "http://admin:***@127.0.0.1:8081/"
    assert clean["token_scope"] == "read" and clean["settings"] == {"tls_ca": "x"}
    assert bearer not in json.dumps(clean) and "hunter22" not in json.dumps(clean)


def test_oversized_parameters_are_recorded_by_their_keys():
    entry_parameters = audit(
        actor="system:test", action="test.big", parameters={"blob": "x" * 20000}
    ).parameters
    assert entry_parameters == {"truncated": True, "keys": ["blob"]}


def test_only_tenant_admins_read_their_tenants_log(world):
    post(world.client("alice"), "/api/v1/teams/", {"name": "audited"})
    post(world.client("charlie"), "/api/v1/teams/", {"name": "bteam"})
    alice_view = world.client("alice").get("/api/v1/audit/").json()["results"]
    assert {e["tenant"] for e in alice_view} == {"acme"}
    charlie_view = world.client("charlie").get("/api/v1/audit/").json()["results"]
    assert {e["tenant"] for e in charlie_view} == {"globex"}
    assert world.client("bob").get("/api/v1/audit/").status_code == 403
    assert world.client("token:admin").get("/api/v1/audit/").status_code == 403
    assert {e["tenant"] for e in world.client("root").get("/api/v1/audit/").json()["results"]} == {
        "acme",
        "globex",
    }


def test_the_log_filters_by_action_actor_target_and_time(world):
    alice, token = world.client("alice"), world.client("token:admin")
    post(alice, "/api/v1/teams/", {"name": "one"})
    post(token, "/api/v1/tokens/", {"team": world.team_a.id})
    post(token, f"/api/v1/tokens/{world.token_rows['read'].id}/revoke/")

    def actions(query: str) -> list[str]:
        response = alice.get(f"/api/v1/audit/?{query}")
        assert response.status_code == 200, response.content
        return [e["action"] for e in response.json()["results"]]

    assert actions("action=token") == ["token.revoke", "token.create"]
    assert actions("action=token.create") == ["token.create"]
    assert actions("actor=alice") == ["team.create"]
    assert actions(f"target=token:{world.token_rows['read'].id}") == ["token.revoke"]
    later = (timezone.now() + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert actions(f"since={later}") == []
    assert actions(f"until={later}") == ["token.revoke", "token.create", "team.create"]
    assert alice.get("/api/v1/audit/?since=yesterday").status_code == 400
    page = alice.get("/api/v1/audit/?page_size=1").json()
    assert page["count"] == 3 and len(page["results"]) == 1 and page["next"]

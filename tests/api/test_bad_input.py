"""Bad input never reaches a 500, and every error is JSON `{"detail", "code"}` (issue 14, items 2 and 8)."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tenants.models import AuditEntry

pytestmark = [pytest.mark.api, pytest.mark.django_db]

DEEP = "[" * 20000 + "]" * 20000


def _json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"] and isinstance(body["code"], str)
    return body


@pytest.mark.parametrize(
    "path, method, who",
    [
        ("/api/v1/auth/login/", "post", None),
        ("/api/v1/clusters/", "post", "token:admin"),
        ("/api/v1/clusters/{x}/", "patch", "token:admin"),
        ("/api/v1/clusters/{x}/routes/", "post", "token:admin"),
        ("/api/v1/tokens/", "post", "token:admin"),
    ],
)
@pytest.mark.parametrize("body", [DEEP, '{"a":' * 5000 + "1" + "}" * 5000, "{not json", '{"a": NaN}', "\x00"])
def test_deep_or_malformed_json_is_a_400(world, path, method, who, body):
    client = world.client(who)
    response = getattr(client, method)(
        path.format(x=world.cluster_x.id), body, content_type="application/json"
    )
    body = _json_error(response, 400)
    assert body["code"] in ("parse_error", "invalid")


def test_deep_json_with_debug_on_is_still_a_json_400(world):
    with override_settings(DEBUG=True):
        response = APIClient().post("/api/v1/auth/login/", DEEP, content_type="application/json")
    assert _json_error(response, 400)["code"] == "parse_error"


@pytest.mark.parametrize("body", [[], ["settings"], "paused", 3, None, True])
def test_a_patch_whose_body_is_not_an_object_is_a_400(world, body):
    import json

    response = world.client("alice").patch(
        f"/api/v1/clusters/{world.cluster_x.id}/", json.dumps(body), content_type="application/json"
    )
    assert "object" in _json_error(response, 400)["detail"]


@pytest.mark.parametrize("field", ["paused", "name", "failover_armed"])
def test_read_only_fields_in_a_patch_are_a_400_naming_them(world, field):
    value = {"paused": True, "name": "renamed", "failover_armed": True}[field]
    response = world.client("alice").patch(
        f"/api/v1/clusters/{world.cluster_x.id}/", {field: value}, format="json"
    )
    body = _json_error(response, 400)
    assert field in body["errors"] and field in body["detail"]
    world.cluster_x.refresh_from_db()
    assert world.cluster_x.name == "prod" and world.cluster_x.failover_armed is False
    assert world.cluster_x.settings.get("paused") in (None, False)


def test_settings_paused_is_the_way_to_pause(world):
    response = world.client("alice").patch(
        f"/api/v1/clusters/{world.cluster_x.id}/", {"settings": {"paused": True}}, format="json"
    )
    assert response.status_code == 200 and response.json()["paused"] is True


def test_the_schema_marks_cluster_fields_read_only(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    components = schema["components"]["schemas"]
    cluster = components["Cluster"]["properties"]
    assert all(cluster[f].get("readOnly") for f in ("paused", "name", "failover_armed"))
    patch = components["PatchedSettingsPatchRequest"]["properties"]
    assert set(patch) == {"settings", "failover_mode"}


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unmatched_api_paths_are_json_404s_for_unsafe_methods_even_with_a_session(world, method):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.alice)
    response = getattr(client, method)("/api/v1/no-such-thing/", {"a": 1}, format="json")
    assert _json_error(response, 404)["code"] == "not_found"


def test_a_failure_inside_a_view_is_a_json_500_and_audited(world, monkeypatch):
    from clusters.services import registration

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(registration, "set_server_maintenance", broken)
    server = world.cluster_x.servers.first()
    for debug in (False, True):
        with override_settings(DEBUG=debug):
            response = world.client("token:admin").post(
                f"/api/v1/clusters/{world.cluster_x.id}/servers/{server.id}/maintenance/",
                {"on": True},
                format="json",
            )
        body = _json_error(response, 500)
        assert body["code"] == "server_error" and "a bug" not in response.content.decode()
    entries = AuditEntry.objects.filter(action="cluster.maintenance", result="500")
    assert entries.count() == 2


def test_a_deleted_clusters_audit_entry_keeps_its_id_and_name(world):
    cluster_id = world.cluster_y.id
    assert world.client("alice").delete(f"/api/v1/clusters/{cluster_id}/").status_code == 204
    entry = AuditEntry.objects.get(action="cluster.destroy")
    assert entry.target == f"cluster:{cluster_id}" and entry.parameters["target_name"] == "staging"


def test_route_actions_are_named_like_the_others(world):
    response = world.client("alice").post(
        f"/api/v1/clusters/{world.cluster_x.id}/routes/", {"kind": "script"}, format="json"
    )
    assert response.status_code == 400
    assert AuditEntry.objects.filter(action="route.create", result="400").exists()


def test_a_throttled_login_is_audited(world, settings):
    settings.DBPILOT_LOGIN_MAX_FAILURES = 1
    client = APIClient()
    for _ in range(2):
        client.post(
            "/api/v1/auth/login/", {"email": "bob@acme.example", "password": "wrong-password"}, format="json"
        )
    response = client.post(
        "/api/v1/auth/login/", {"email": "bob@acme.example", "password": "wrong-password"}, format="json"
    )
    assert _json_error(response, 429)["code"] == "throttled"
    assert AuditEntry.objects.filter(
        action="auth.login", result="throttled", target=f"user:{world.bob.pk}"
    ).exists()


@pytest.mark.parametrize("key", ["preferred_servers", "ignored_servers"])
def test_preferred_and_ignored_servers_must_be_servers_of_the_cluster(world, key):
    url = f"/api/v1/clusters/{world.cluster_x.id}/"
    alice = world.client("alice")
    body = _json_error(alice.patch(url, {"settings": {key: ["127.0.0.1:9999"]}}, format="json"), 400)
    assert "not a server of this cluster" in body["detail"]
    server = world.cluster_x.servers.first()
    assert alice.patch(url, {"settings": {key: [server.address]}}, format="json").status_code == 200


def test_tls_ca_is_pem_content_never_a_file(world):
    url = f"/api/v1/clusters/{world.cluster_x.id}/"
    body = _json_error(
        world.client("alice").patch(
            url, {"settings": {"tls": "verify", "tls_ca": "/etc/shadow"}}, format="json"
        ),
        400,
    )
    assert "settings.tls_ca" in body["errors"]


def test_hook_names_must_exist_in_the_hooks_directory_when_saved(world, settings, tmp_path):
    settings.DBPILOT_HOOKS_DIR = tmp_path
    url = f"/api/v1/clusters/{world.cluster_x.id}/"
    alice = world.client("alice")
    body = _json_error(alice.patch(url, {"settings": {"pre_failover": "missing-hook"}}, format="json"), 400)
    assert "settings.pre_failover" in body["errors"] and str(tmp_path) not in body["detail"]
    (tmp_path / "notify").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "notify").chmod(0o755)
    assert alice.patch(url, {"settings": {"pre_failover": "notify"}}, format="json").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/tokens/?team=-2.6701413092568777e%2B227",
        "/api/v1/tokens/?team=1e300",
        "/api/v1/audit/?tenant=99999999999999999999999",
        "/api/v1/tokens/?team=1.5",
    ],
)
def test_id_filters_take_whole_numbers_only(world, url):
    assert _json_error(world.client("alice").get(url), 400)["code"] in ("invalid", "error")

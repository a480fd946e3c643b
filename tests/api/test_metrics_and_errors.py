"""/metrics (Prometheus, token-protected) and JSON errors for unknown API paths."""

import pytest
from django.test import override_settings

pytestmark = [pytest.mark.api, pytest.mark.django_db]


def test_metrics_refuses_until_a_token_is_configured(client):
    with override_settings(DBPILOT_METRICS_TOKEN=None):
        response = client.get("/metrics")
    assert response.status_code == 403 and "DBPILOT_METRICS_TOKEN" in response.json()["detail"]


def test_metrics_needs_the_token_and_reports_inventory(client, make_cluster, world):
    with override_settings(DBPILOT_METRICS_TOKEN="metrics-secret-123"):
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-secret-123")
    assert response.status_code == 200
    text = response.content.decode()
    assert "dbpilot_clusters" in text and "dbpilot_servers" in text and "dbpilot_open_findings" in text


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_api_docs_use_no_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html and "cdn." not in html and "unpkg" not in html


def test_cluster_object_says_what_the_caller_may_do(world):
    response = world.client("bob").get("/api/v1/clusters/")
    assert response.status_code == 200
    perms = {c["name"]: c["my_permissions"] for c in response.json()["results"]}
    assert perms and all(p == ["view_cluster"] for p in perms.values())
    response = world.client("alice").get("/api/v1/clusters/")
    assert all(
        c["my_permissions"] == ["view_cluster", "operate_cluster", "admin_cluster"]
        for c in response.json()["results"]
    )

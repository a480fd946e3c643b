"""The portal's Django side: the HTML shell at / and client routes, built from Vite's manifest, and a
catch-all that never answers for the API, websockets, admin, static files or metrics."""

from __future__ import annotations

import json

import pytest

from controlplane import portal

pytestmark = [pytest.mark.api, pytest.mark.django_db]


def test_portal_serves_the_built_app_at_root_and_client_routes(client):
    assets = portal.portal_assets()
    assert assets is not None, (
        "controlplane/static/portal/manifest.json is missing: run npm run build in frontend/"
    )
    for path in ("/", "/clusters/12/jobs/7", "/login"):
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.content.decode()
        assert f'<script type="module" src="{assets.scripts[0]}">' in html
        for href in assets.styles:
            assert f'<link rel="stylesheet" href="{href}">' in html
        assert 'data-authenticated="0"' in html
        assert "csrftoken" in response.cookies
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
        assert response["Cache-Control"] == "no-cache"


def test_portal_built_assets_are_served_as_static_files(client):
    assets = portal.portal_assets()
    for url in assets.scripts + assets.styles:
        response = client.get(url)
        assert response.status_code == 200, url


@pytest.mark.parametrize(
    "path",
    ["/api/v1/no-such-thing/", "/api", "/ws/clusters/1/", "/admin/", "/static/portal/nope.js", "/metrics"],
)
def test_portal_never_shadows_reserved_prefixes(client, path):
    response = client.get(path)
    assert b'id="root"' not in response.content


def test_portal_only_answers_safe_methods(client):
    assert client.post("/clusters").status_code in (403, 405)  # CSRF or method: never the app shell


def test_portal_says_how_to_build_it_when_the_manifest_is_missing(client, tmp_path, monkeypatch):
    monkeypatch.setattr(portal, "MANIFEST", tmp_path / "missing.json")
    response = client.get("/")
    assert response.status_code == 503
    assert b"npm run build" in response.content


def test_portal_assets_include_css_of_imported_chunks(tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "src/main.tsx": {
                    "file": "assets/main-1.js",
                    "isEntry": True,
                    "css": ["assets/main-1.css"],
                    "imports": ["_vendor.js"],
                },
                "_vendor.js": {"file": "assets/vendor-2.js", "css": ["assets/vendor-2.css"]},
            }
        )
    )
    assets = portal.portal_assets(manifest)
    assert assets.scripts == ("/static/portal/assets/main-1.js",)
    assert assets.styles == ("/static/portal/assets/main-1.css", "/static/portal/assets/vendor-2.css")


def test_portal_assets_of_a_broken_manifest_are_none(tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text("{not json")
    assert portal.portal_assets(manifest) is None

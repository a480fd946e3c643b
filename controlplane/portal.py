"""The web portal: serves the built single-page app at `/` and at every client-side route.

The React app is built by Vite (frontend/, `npm run build`) into controlplane/static/portal/ with a
manifest; this view reads the manifest to name the hashed script and stylesheet files. The built files
are committed, so running dbpilot needs no Node.js. Everything else (API, websockets, admin, static
files, metrics) has its own route and is never shadowed by the portal's catch-all.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)

PORTAL_DIR = Path(settings.BASE_DIR) / "controlplane" / "static" / "portal"
MANIFEST = PORTAL_DIR / "manifest.json"
ENTRY = "src/main.tsx"
# URL prefixes the portal must never answer for (see controlplane/urls.py).
RESERVED_PREFIXES = ("api", "ws", "admin", "static", "metrics")
PORTAL_ROUTE = r"^(?!(?:" + "|".join(RESERVED_PREFIXES) + r")(?:/|$)).*$"


@dataclass(frozen=True)
class PortalAssets:
    scripts: tuple[str, ...]
    styles: tuple[str, ...]


_cache: dict[str, object] = {}


def portal_assets(manifest_path: Path | None = None) -> PortalAssets | None:
    """The entry's script and stylesheet URLs from Vite's manifest; None when the portal is not built.

    Cached by the manifest's modification time, so a rebuild is picked up without a restart.
    """
    manifest_path = manifest_path or MANIFEST
    try:
        mtime = manifest_path.stat().st_mtime_ns
    except OSError:
        return None
    key = f"{manifest_path}:{mtime}"
    if _cache.get("key") == key:
        return _cache["assets"]  # type: ignore[return-value]
    try:
        manifest = json.loads(manifest_path.read_text())
        entry = manifest[ENTRY]
    except (OSError, ValueError, KeyError) as exc:
        log.error("portal manifest %s is unreadable: %s", manifest_path, exc)
        return None
    styles = list(entry.get("css", []))
    for imported in entry.get("imports", []):  # CSS of statically imported chunks
        styles.extend(manifest.get(imported, {}).get("css", []))
    assets = PortalAssets(
        scripts=(static(f"portal/{entry['file']}"),),
        styles=tuple(static(f"portal/{css}") for css in dict.fromkeys(styles)),
    )
    _cache.update(key=key, assets=assets)
    return assets


def _content_security_policy(request: HttpRequest) -> str:
    host = request.get_host()
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' ws://{host} wss://{host}",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


@require_safe
@ensure_csrf_cookie
def portal(request: HttpRequest) -> HttpResponse:
    """The portal's HTML shell for `/` and any client-side route (the app routes in the browser)."""
    assets = portal_assets()
    if assets is None:
        return HttpResponse(
            "The dbpilot portal is not built. Run `npm ci && npm run build` in frontend/ "
            "(the API at /api/v1/ works without it).",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    response = render(
        request, "portal/index.html", {"assets": assets, "favicon": static("portal/favicon.svg")}
    )
    response["Cache-Control"] = "no-cache"
    response["Content-Security-Policy"] = _content_security_policy(request)
    response["Referrer-Policy"] = "same-origin"
    response["X-Content-Type-Options"] = "nosniff"
    return response

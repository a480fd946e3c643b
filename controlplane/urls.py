"""URL map: the REST API under /api/v1/, OpenAPI, metrics, admin and the portal at /."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from controlplane.metrics import api_not_found, metrics
from controlplane.portal import PORTAL_ROUTE, portal

handler404 = "controlplane.metrics.api_not_found"
handler500 = "controlplane.api.errors.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("clusters.api.urls")),
    path("api/v1/", include("tenants.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("metrics", metrics, name="metrics"),
    # Unknown API paths: a JSON 404 for every method (no CSRF page: nothing is done there).
    re_path(r"^api/", csrf_exempt(api_not_found)),
    re_path(PORTAL_ROUTE, portal, name="portal"),  # the portal: never shadows api/ ws/ admin/ static/ metrics
]

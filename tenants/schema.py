"""OpenAPI descriptions of dbpilot's authentication (drf-spectacular extensions, loaded by TenantsConfig)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.BearerTokenAuthentication"
    name = "teamToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "dbp_<key>_<secret>",
            "description": "A team API token: `Authorization: Bearer dbp_<key>_<secret>`.",
        }


class PortalSessionScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.PortalSessionAuthentication"
    name = "portalSession"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "The portal's session (POST /api/v1/auth/login/); unsafe requests need X-CSRFToken.",
        }

"""Tenancy API routes: teams (members, grants), tokens, audit, session login, platform pause."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.api.auditlog import AuditEntryViewSet
from tenants.api.invitations import InvitationAcceptView
from tenants.api.platform import PlatformHealthView, PlatformPauseView, PlatformResumeView, PlatformView
from tenants.api.session import CsrfView, LoginView, LogoutView, MeView
from tenants.api.teams import TeamViewSet
from tenants.api.tokens import TokenViewSet

router = SimpleRouter()
router.register("teams", TeamViewSet, basename="team")
router.register("tokens", TokenViewSet, basename="token")
router.register("audit", AuditEntryViewSet, basename="audit")

urlpatterns = router.urls + [
    path("auth/csrf/", CsrfView.as_view(), name="auth-csrf"),
    path("auth/login/", LoginView.as_view(), name="auth-login"),
    path("invitations/accept/", InvitationAcceptView.as_view(), name="invitation-accept"),
    path("auth/logout/", LogoutView.as_view(), name="auth-logout"),
    path("auth/me/", MeView.as_view(), name="auth-me"),
    path("platform/", PlatformView.as_view(), name="platform"),
    path("platform/pause/", PlatformPauseView.as_view(), name="platform-pause"),
    path("platform/health/", PlatformHealthView.as_view(), name="platform-health"),
    path("platform/resume/", PlatformResumeView.as_view(), name="platform-resume"),
]

"""Tenancy API routes (teams, tokens, audit, session login)."""
from rest_framework.routers import SimpleRouter

router = SimpleRouter()
urlpatterns = router.urls

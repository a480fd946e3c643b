from rest_framework.routers import SimpleRouter

from clusters.api.hosts import host_urlpatterns
from clusters.api.provisioning import provisioning_urlpatterns
from clusters.api.routes import route_urlpatterns
from clusters.api.views import ClusterViewSet, JobViewSet

router = SimpleRouter()
router.register("clusters", ClusterViewSet, basename="cluster")
router.register("jobs", JobViewSet, basename="job")
urlpatterns = host_urlpatterns + provisioning_urlpatterns + router.urls + route_urlpatterns

from rest_framework.routers import SimpleRouter

from clusters.api.alerts import AlertSubscriptionViewSet
from clusters.api.backups import backup_urlpatterns
from clusters.api.history import metrics_urlpatterns
from clusters.api.hosts import host_urlpatterns
from clusters.api.provisioning import provisioning_urlpatterns
from clusters.api.repair import repair_urlpatterns
from clusters.api.routes import route_urlpatterns
from clusters.api.views import ClusterViewSet, JobViewSet

router = SimpleRouter()
router.register("clusters", ClusterViewSet, basename="cluster")
router.register("jobs", JobViewSet, basename="job")
router.register("alerts/subscriptions", AlertSubscriptionViewSet, basename="alert-subscription")
urlpatterns = (
    host_urlpatterns
    + provisioning_urlpatterns
    + repair_urlpatterns
    + backup_urlpatterns
    + router.urls
    + route_urlpatterns
    + metrics_urlpatterns
)

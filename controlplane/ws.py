"""Websocket routes."""

from django.urls import path, re_path

from clusters.consumers import ClusterConsumer, EventsConsumer, UnknownPathConsumer
from clusters.job_consumer import JobConsumer

websocket_urlpatterns = [
    path("ws/clusters/<int:cluster_id>/", ClusterConsumer.as_asgi()),
    path("ws/events/", EventsConsumer.as_asgi()),
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
]

# Everything else: a clean 4404 close rather than the router's "No route found" error.
unknown_websocket_path = [re_path(r"", UnknownPathConsumer.as_asgi())]

"""Websocket routes."""
from django.urls import path

from clusters.consumers import ClusterConsumer, EventsConsumer
from clusters.job_consumer import JobConsumer

websocket_urlpatterns = [
    path("ws/clusters/<int:cluster_id>/", ClusterConsumer.as_asgi()),
    path("ws/events/", EventsConsumer.as_asgi()),
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
]

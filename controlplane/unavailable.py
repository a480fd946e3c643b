"""503 JSON while dbpilot's own database or Redis does not answer, instead of a 500 page.

A view that hits a down control-plane database (PostgreSQL restarting) or Redis raises a connection
error that no view can do anything about; the caller should retry. Each request opens its own database
connection, so the API answers again by itself once the database is back.
"""

from __future__ import annotations

import logging

import kombu.exceptions
import redis
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


def unavailable_response(exc: BaseException) -> JsonResponse | None:
    """The 503 for an outage of dbpilot's own store or broker, None for any other exception."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        body = {
            "detail": "dbpilot's database is unavailable right now; retry in a few seconds.",
            "code": "database_unavailable",
        }
    elif isinstance(exc, (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError)):
        # (kombu's: the broker refused a message, e.g. a job the request started; its row is in the
        # database and the reaper sends pending jobs again once Redis is back)
        body = {
            "detail": "dbpilot's Redis is unavailable right now; retry in a few seconds.",
            "code": "redis_unavailable",
        }
    else:
        return None
    log.warning("503 %s: %s: %s", body["code"], type(exc).__name__, exc)
    response = JsonResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class ServiceUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        response = unavailable_response(exception)
        if response is not None:
            from django.db import close_old_connections

            close_old_connections()  # a broken connection is not reused by the next request
        return response

"""API errors: always JSON `{"detail", "code"}`, never a traceback or an HTML page.

- DRF views: `exception_handler` turns every exception into JSON; an unexpected one becomes a JSON 500
  (logged with its traceback for the operator), so the mutating request is still audited.
- Anything else under /api/ (a failure outside DRF, a CSRF refusal of a plain Django view, Django's
  500 handler): `ApiErrorsMiddleware`, `csrf_failure` and `server_error` answer JSON too.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from controlplane.unavailable import unavailable_response

SERVER_ERROR = {
    "detail": "Internal error: the request failed on the server; the operator's log has the details.",
    "code": "server_error",
}

log = logging.getLogger(__name__)


class Conflict(exceptions.APIException):
    """409 with the checks that blocked a request."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"

    def __init__(self, detail: str, code: str = "conflict", checks: list[dict] | None = None, **extra):
        super().__init__(detail, code)
        self.payload = {"detail": detail, "code": code, "checks": checks or [], **extra}


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(
            f"{k}: {_flatten(v)}" if k != "non_field_errors" else _flatten(v) for k, v in detail.items()
        )
    if isinstance(detail, list):
        return "; ".join(_flatten(v) for v in detail)
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, Conflict):
        return Response(exc.payload, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        outage = unavailable_response(exc)  # dbpilot's own database or Redis down: 503, not a 500
        if outage is not None:
            set_rollback()
            return outage
        request = context.get("request")
        log.error(
            "unhandled error in %s %s",
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        set_rollback()
        return Response(dict(SERVER_ERROR), status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        code = "invalid"
        body = {"detail": _flatten(data), "code": code, "errors": data}
    else:
        codes = exc.get_codes() if hasattr(exc, "get_codes") else "error"
        code = codes if isinstance(codes, str) else "error"
        body = {
            "detail": _flatten(data.get("detail", data) if isinstance(data, dict) else data),
            "code": code,
        }
    response.data = body
    return response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


class ApiErrorsMiddleware:
    """JSON 500 for an exception outside DRF under /api/ (also with DEBUG on: no debug page)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not _is_api(request):
            return None
        outage = unavailable_response(exception)
        if outage is not None:
            return outage
        log.error(
            "unhandled error in %s %s",
            request.method,
            request.path,
            exc_info=(type(exception), exception, exception.__traceback__),
        )
        return JsonResponse(dict(SERVER_ERROR), status=500)


def csrf_failure(request, reason: str = ""):
    """CSRF refusals: JSON under /api/, Django's page elsewhere."""
    if _is_api(request):
        return JsonResponse({"detail": f"CSRF check failed: {reason}", "code": "csrf_failed"}, status=403)
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason)


def server_error(request):
    """Django's last-resort 500: JSON under /api/."""
    if _is_api(request):
        return JsonResponse(dict(SERVER_ERROR), status=500)
    from django.views.defaults import server_error as django_server_error

    return django_server_error(request)

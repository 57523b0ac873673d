"""Every API error answers ``{"errors": {field: [messages]}}``."""
from __future__ import annotations

import logging
import sys

import psycopg
import redis.exceptions
from django import db
from django.http import Http404, JsonResponse
from kombu.exceptions import OperationalError as BrokerError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def error_lists(detail) -> dict:
    """A DRF error detail as ``{field: [messages]}`` (nested serializers nest; a bare list or message is
    ``non_field_errors``): the ``errors`` of every API error answer."""
    if isinstance(detail, dict):
        return {key: error_lists(value) if isinstance(value, dict) else _flatten(value)
                for key, value in detail.items()}
    return {"non_field_errors": _flatten(detail)}


def _flatten(value):
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, (dict, list)):
                out.append(item)
            else:
                out.append(str(item))
        return out
    return [str(value)]


def exception_handler(exc, context):
    if isinstance(exc, RecursionError):
        # Input nested deeply enough to exhaust recursion somewhere in validation: bad input, not a crash.
        exc = exceptions.ValidationError({"non_field_errors": ["JSON nested too deeply."]})
    if isinstance(exc, exceptions.ParseError):
        exc = exceptions.ValidationError({"non_field_errors": [f"Malformed JSON: {exc.detail}"]})
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"errors": error_lists(exc.detail)}
    else:
        detail = getattr(exc, "detail", None) or response.data
        message = str(detail.get("detail", detail)) if isinstance(detail, dict) else str(detail)
        response.data = {"errors": {"detail": [message]}, "detail": message}
    return response


def json_not_found(request, exception=None):
    return JsonResponse({"errors": {"detail": ["Not found."]}, "detail": "Not found."}, status=404)


def json_bad_request(request, exception=None):
    """Django's 400 for a request it refuses before any view (a Host header that is no host name, another
    SuspiciousOperation): the same JSON shape as every other error, and nothing of the request echoed."""
    return JsonResponse({"errors": {"detail": ["Bad request."]}, "detail": "Bad request."}, status=400)


def json_forbidden(request, exception=None):
    return JsonResponse({"errors": {"detail": ["Permission denied."]}, "detail": "Permission denied."},
                        status=403)


def json_server_error(request):
    """Django's 500 (``handler500``), called while the exception is being handled: an outage of a service the
    API depends on (``is_unavailable``) is a 503 instead, e.g. one raised in a middleware."""
    if is_unavailable(sys.exc_info()[1]):
        return json_service_unavailable()
    return JsonResponse({"errors": {"detail": ["Internal server error."]}, "detail": "Internal server error."},
                        status=500)


# --- a dependency down: 503 ------------------------------------------------------------------

logger = logging.getLogger(__name__)
# Seconds a client is asked to wait before it tries again (the Retry-After of every 503).
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = "Service temporarily unavailable (a database or cache did not answer); retry later."
# Errors that mean PostgreSQL, Redis or RabbitMQ is down, unreachable or cut the connection (not that the
# request was wrong): Django's and psycopg's connection errors (psycopg's own cursors, bulk.py), redis-py's
# connection errors and timeouts, kombu's (a publish in a request).
UNAVAILABLE_ERRORS = (db.OperationalError, db.InterfaceError, psycopg.OperationalError, psycopg.InterfaceError,
                      redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, BrokerError)


def is_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a dependency's outage (answered 503 with Retry-After), not a bug (500)."""
    return isinstance(exc, UNAVAILABLE_ERRORS)


def service_unavailable_body() -> dict:
    return {"errors": {"detail": [UNAVAILABLE_MESSAGE]}, "detail": UNAVAILABLE_MESSAGE}


def json_service_unavailable() -> JsonResponse:
    response = JsonResponse(service_unavailable_body(), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class ServiceUnavailableMiddleware:
    """A view's error that is a dependency's outage (PostgreSQL refusing connections, Redis down) answers
    503 with ``Retry-After`` and the API's error shape, rather than 500: clients' retry policies retry a
    503 after the wait it asks for, and an operator's dashboards tell an outage from a bug. Last in
    MIDDLEWARE, so its ``process_exception`` sees the view's exception first, with DEBUG on or off."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_unavailable(exception):
            return None
        first_line = (str(exception).strip().splitlines() or [""])[0]
        logger.error("%s %s: 503, a dependency is unavailable: %s: %s", request.method, request.path,
                     type(exception).__name__, first_line)
        return json_service_unavailable()


def not_found_response() -> Response:
    return Response({"errors": {"detail": ["Not found."]}, "detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)


__all__ = ["error_lists", "exception_handler", "is_unavailable", "json_bad_request", "json_forbidden",
           "json_not_found", "json_server_error", "json_service_unavailable", "not_found_response",
           "service_unavailable_body", "RETRY_AFTER_SECONDS", "ServiceUnavailableMiddleware", "Http404"]

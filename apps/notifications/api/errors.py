"""Every API error answers ``{"errors": {field: [messages]}}``."""
from __future__ import annotations

from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..intake.validation import error_lists


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


def json_server_error(request):
    return JsonResponse({"errors": {"detail": ["Internal server error."]}, "detail": "Internal server error."},
                        status=500)


def not_found_response() -> Response:
    return Response({"errors": {"detail": ["Not found."]}, "detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)


__all__ = ["exception_handler", "json_not_found", "json_server_error", "not_found_response", "Http404"]

"""Every API error answers ``{"errors": {field: [messages]}}``."""
from __future__ import annotations

from django.http import Http404, JsonResponse
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
    return JsonResponse({"errors": {"detail": ["Internal server error."]}, "detail": "Internal server error."},
                        status=500)


def not_found_response() -> Response:
    return Response({"errors": {"detail": ["Not found."]}, "detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)


__all__ = ["error_lists", "exception_handler", "json_bad_request", "json_forbidden", "json_not_found",
           "json_server_error", "not_found_response", "Http404"]

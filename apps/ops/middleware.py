"""Request id and API metrics for every request."""
from __future__ import annotations

import time

from django.contrib.auth import middleware as _auth
from django.contrib.messages import middleware as _messages

from notifier import metrics
from notifier.context import clean_request_id, new_request_id, reset_request_id, set_request_id

REQUEST_ID_META = "HTTP_X_REQUEST_ID"
UNTRACKED_PATHS = ("/metrics", "/healthz", "/readyz")


class RequestIdMiddleware:
    """Takes ``X-Request-ID`` from the client (or makes one), keeps it in a context
    variable for logs and task headers for the whole request, and echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = clean_request_id(request.META.get(REQUEST_ID_META)) or new_request_id()
        request.request_id = request_id
        token = set_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response["X-Request-ID"] = request_id
        return response


class MetricsMiddleware:
    """API request duration and status codes, labelled by route pattern (not by raw path)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path in UNTRACKED_PATHS or request.path.rstrip("/") in UNTRACKED_PATHS:
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        metrics.http_request(request.method, route, response.status_code, time.perf_counter() - started)
        return response


# --- Browser-only middleware ---------------------------------------------------------
# The user and messages serve the admin and other browser pages. The API authenticates every
# request by its Bearer key in DRF, yet Django built a lazy user and message storage (reading the
# cookies) around each API request and checked the storage again on the way out. These subclasses
# (subclasses, so the admin's system checks still find them) pass API requests straight through.
# Sessions and CSRF stay Django's own classes for every path: `check --deploy` looks for them by
# their exact dotted paths (security.W003, W011, W016), and they cost little on a request without
# cookies.

API_PREFIX = "/api/"


class _BrowserOnly:
    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)  # under ASGI a coroutine, which the caller awaits
        return super().__call__(request)


class AuthenticationMiddleware(_BrowserOnly, _auth.AuthenticationMiddleware):
    """Django's, for every path but /api/ (the API authenticates by key, in DRF)."""


class MessageMiddleware(_BrowserOnly, _messages.MessageMiddleware):
    """Django's, for every path but /api/."""

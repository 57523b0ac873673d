"""Request id and API metrics for every request."""
from __future__ import annotations

import time

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

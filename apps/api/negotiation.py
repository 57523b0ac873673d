"""Content negotiation with a shortcut for the requests every API client sends."""
from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation

# Accept headers for which DRF's negotiation picks a JSON-only renderer list's one renderer
# with the media type "application/json" (no Accept header means "*/*").
_PLAIN_ACCEPTS = frozenset({None, "", "*/*", "application/json"})


class JSONFirstContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answered without parsing when its answer is certain.

    With one renderer of ``application/json``, no ``?format=`` and an ``Accept`` of
    nothing, ``*/*`` or ``application/json``, DRF always answers ``(renderer,
    "application/json")``; parsing and ordering the Accept list per request cost more
    than the rest of a small request's rendering. Anything else (other Accept values,
    views with more renderers, format overrides) goes through DRF unchanged, with its 406.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        meta = request._request.META if hasattr(request, "_request") else request.META
        if format_suffix is None and len(renderers) == 1 and renderers[0].media_type == "application/json" \
                and meta.get("HTTP_ACCEPT") in _PLAIN_ACCEPTS and "format" not in meta.get("QUERY_STRING", ""):
            return renderers[0], "application/json"
        return super().select_renderer(request, renderers, format_suffix)

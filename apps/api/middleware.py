from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import JsonResponse

from notifier.bodylimit import is_unframed, read_unframed_body


class BodySizeLimitMiddleware:
    """413 for request bodies over NOTIFIER_MAX_BODY_BYTES, before anything reads them.

    A Content-Length over the limit is refused as it is. A body without one (chunked) that reaches
    Django through a WSGI entry other than ``config.wsgi`` (which limits it first) is read here in
    pieces up to the limit and one byte (notifier/bodylimit.py): 413 beyond it, otherwise the request
    reads the bytes read (Django itself would read no body without a Content-Length)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.NOTIFIER_MAX_BODY_BYTES
        meta = request.META
        try:
            length = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            return JsonResponse(
                {"errors": {"non_field_errors": [f"Request body is {length} bytes; the limit is {limit}."]}},
                status=413,
            )
        if "HTTP_TRANSFER_ENCODING" in meta and "wsgi.input" in meta and is_unframed(meta):
            if not read_unframed_body(meta, limit):
                return JsonResponse(
                    {"errors": {"non_field_errors": [f"Request body is over the limit of {limit} bytes."]}},
                    status=413,
                )
            request._stream = LimitedStream(meta["wsgi.input"], int(meta["CONTENT_LENGTH"]))
        return self.get_response(request)


class RejectNulMiddleware:
    """400 for a NUL character in the path or query string: PostgreSQL cannot compare or store it,
    so it would otherwise surface as a 500 from whichever filter first touched the database."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", "") or any(
            "\x00" in value for values in request.GET.lists() for value in values[1]
        ):
            return JsonResponse({"errors": {"non_field_errors": ["NUL characters are not allowed in URLs."]}},
                                status=400)
        return self.get_response(request)

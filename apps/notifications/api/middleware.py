from django.conf import settings
from django.http import JsonResponse


class BodySizeLimitMiddleware:
    """413 for request bodies over NOTIFIER_MAX_BODY_BYTES, before anything reads them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.NOTIFIER_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            return JsonResponse(
                {"errors": {"non_field_errors": [f"Request body is {length} bytes; the limit is {limit}."]}},
                status=413,
            )
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

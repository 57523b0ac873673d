"""Endpoints called by providers and by mail clients, not by API clients (no API key).

- ``POST /api/v1/webhooks/twilio/status/``: Twilio status callbacks, checked
  by ``X-Twilio-Signature`` alone against the URL built from
  ``NOTIFIER_PUBLIC_URL``.
- ``GET|POST /unsubscribe/<token>/``: the ``List-Unsubscribe`` target.
"""
from __future__ import annotations

import html

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from notifier.pii import mask_address
from notifier.unsubscribe import read_token

from .services import sms_status_callback_apply, unsubscribe_apply


def _error(status: int, field: str, message: str) -> JsonResponse:
    return JsonResponse({"errors": {field: [message]}, "detail": message}, status=status)


def _public_url(request) -> str:
    """The URL Twilio called, as Twilio saw it (behind proxies: from NOTIFIER_PUBLIC_URL)."""
    return settings.NOTIFIER_PUBLIC_URL.rstrip("/") + request.get_full_path()


@csrf_exempt
@require_POST
def twilio_status_webhook(request):
    from twilio.request_validator import RequestValidator

    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return _error(401, "detail", "Missing X-Twilio-Signature.")
    if not settings.TWILIO_AUTH_TOKEN:
        return _error(403, "detail", "Twilio is not configured.")
    if not RequestValidator(settings.TWILIO_AUTH_TOKEN).validate(_public_url(request), request.POST, signature):
        return _error(403, "detail", "Invalid X-Twilio-Signature.")
    sid = request.POST.get("MessageSid") or request.POST.get("SmsSid") or ""
    if not sid:
        return _error(400, "MessageSid", "This field is required.")
    outcome = sms_status_callback_apply(
        sid=sid, message_status=request.POST.get("MessageStatus") or request.POST.get("SmsStatus") or "",
        error_code=request.POST.get("ErrorCode", ""), error_message=request.POST.get("ErrorMessage", ""),
    )
    return JsonResponse({"result": outcome})


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto;"><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(_PAGE.format(title=html.escape(title), body=body), status=status,
                        content_type="text/html; charset=utf-8")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """GET shows a confirmation button (link scanners must not unsubscribe anyone); POST unsubscribes.

    Mail clients' one-click unsubscribe (RFC 8058) is a POST with
    ``List-Unsubscribe=One-Click``.
    """
    notification_id = read_token(token)
    if notification_id is None:
        return _page("Unknown link", "<p>This unsubscribe link is not valid.</p>", status=404)
    if request.method == "GET":
        return _page("Unsubscribe", '<form method="post"><p>Stop receiving these messages?</p>'
                                    '<button type="submit">Unsubscribe</button></form>')
    suppression = unsubscribe_apply(notification_id=notification_id)
    if suppression is None:
        return _page("Unknown link", "<p>This unsubscribe link is no longer valid.</p>", status=404)
    who = html.escape(mask_address(suppression.channel, suppression.address))
    return _page("Unsubscribed", f"<p>{who} will no longer receive these messages.</p>")

"""SMS through Twilio's Messages API, with the official ``twilio`` library.

``api_base_url`` replaces ``https://api.twilio.com`` (tests, proxies). Every
send carries a ``StatusCallback`` to our webhook so Twilio reports
``delivered``/``failed`` later.

Errors: Twilio codes 21211 (invalid To) and 21614 (not a mobile number) are
permanent and put the number on the suppression list; 21610 (the recipient
replied STOP) is permanent and suppressed too; any other 4xx is permanent;
429, 5xx, timeouts and connection errors are transient and honour
``Retry-After``.
"""
from __future__ import annotations

import logging
import threading

from .base import ConcurrentProvider, Message, ProviderError, retry_after_seconds

# twilio logs every request at INFO; keep that quiet unless asked for (LOGGING can lower it).
_http_logger = logging.getLogger("notifier.twilio_http")
if _http_logger.level == logging.NOTSET:
    _http_logger.setLevel(logging.WARNING)

INVALID_NUMBER_CODES = {21211, 21614}
OPTED_OUT_CODES = {21610}


def classify_twilio_error(status: int | None, code: int | None, text: str, headers=None) -> ProviderError:
    label = f"Twilio {status or ''} {code or ''}".replace("  ", " ").strip()
    message = f"{label}: {text}".strip()
    if code in INVALID_NUMBER_CODES:
        return ProviderError(message, permanent=True, code=str(code), suppress="invalid_number")
    if code in OPTED_OUT_CODES:
        return ProviderError(message, permanent=True, code=str(code), suppress="carrier_opt_out")
    if status == 429 or (status is not None and status >= 500):
        return ProviderError(message, permanent=False, code=str(code or status),
                             retry_after=retry_after_seconds(headers))
    if status is not None and 400 <= status < 500:
        return ProviderError(message, permanent=True, code=str(code or status))
    return ProviderError(message, permanent=False, code=str(code or status or ""))


class TwilioSmsProvider(ConcurrentProvider):
    """One Twilio client (and pooled HTTP session) per sending thread."""

    name = "twilio"
    channel = "sms"

    def __init__(self, *, account_sid: str, auth_token: str, from_number: str, status_callback: str = "",
                 api_base_url: str = "", timeout: float = 10.0, concurrency: int = 8, name: str = "twilio"):
        self.name = name
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.status_callback = status_callback
        self.api_base_url = api_base_url.rstrip("/")
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
        self._local = threading.local()

    def _client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            from twilio.http.http_client import TwilioHttpClient
            from twilio.rest import Client

            client = Client(self.account_sid, self.auth_token,
                            http_client=TwilioHttpClient(timeout=self.timeout, pool_connections=True,
                                                         logger=_http_logger))
            if self.api_base_url:
                client.api.base_url = self.api_base_url
            self._local.client = client
        return client

    def send(self, message: Message) -> str:
        import requests
        from twilio.base.exceptions import TwilioException, TwilioRestException

        client = self._client()
        params = {"to": message.to, "from_": self.from_number, "body": message.body}
        if self.status_callback:
            params["status_callback"] = self.status_callback
        try:
            created = client.messages.create(**params)
        except TwilioRestException as exc:
            last = getattr(client.http_client, "_test_only_last_response", None)
            raise classify_twilio_error(exc.status, exc.code, exc.msg, getattr(last, "headers", None)) from exc
        except requests.Timeout as exc:
            raise ProviderError(f"Twilio timeout: {exc}") from exc
        except (requests.RequestException, OSError) as exc:
            raise ProviderError(f"Twilio connection error: {exc.__class__.__name__}: {exc}") from exc
        except TwilioException as exc:
            raise ProviderError(f"Twilio error: {exc}") from exc
        if not created.sid:
            raise ProviderError("Twilio accepted the message without a sid")
        return created.sid

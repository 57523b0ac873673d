"""Push: FCM HTTP v1 for android and ios devices, Web Push with VAPID for web subscriptions.

Both are in the ``push`` channel; each accepts the devices of its platforms, so
``NOTIFIER_PUSH_PROVIDERS=fcm,webpush`` sends every device through the right
one. A device that the push service no longer knows (FCM ``UNREGISTERED`` or
404, Web Push 404/410) is a permanent error for that device, marked
``suppress="unregistered_device"`` so the caller deactivates it.
"""
from __future__ import annotations

import json
import threading
from typing import Any

from notifier.addresses import push_platform

from .base import ConcurrentProvider, Message, ProviderError, retry_after_seconds

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_UNREGISTERED = {"UNREGISTERED", "SENDER_ID_MISMATCH"}


def _stringify(data: dict[str, Any]) -> dict[str, str]:
    """FCM ``data`` takes strings only: objects and numbers are sent as JSON text."""
    return {str(k): v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in data.items()}


def classify_fcm_response(status: int, body: Any, headers=None) -> ProviderError:
    error = body.get("error", {}) if isinstance(body, dict) else {}
    codes = {d.get("errorCode") for d in error.get("details", []) if isinstance(d, dict)} - {None}
    text = f"FCM {status} {error.get('status', '')} {','.join(sorted(codes))}: {error.get('message', '')}".strip()
    if status == 404 or codes & FCM_UNREGISTERED:
        return ProviderError(text, permanent=True, code="UNREGISTERED", suppress="unregistered_device")
    if status == 429 or status >= 500 or codes & {"UNAVAILABLE", "INTERNAL", "QUOTA_EXCEEDED"}:
        return ProviderError(text, permanent=False, code=str(status),
                             retry_after=retry_after_seconds(headers))
    if status == 401:  # our access token; it is refreshed before the next try
        return ProviderError(text, permanent=False, code="401")
    return ProviderError(text, permanent=True, code=str(status))


class FcmPushProvider(ConcurrentProvider):
    """FCM HTTP v1 ``messages:send`` with a service-account OAuth2 token (cached until it expires)."""

    name = "fcm"
    channel = "push"
    platforms = frozenset({"android", "ios"})

    def __init__(self, *, credentials_file: str, api_base_url: str = "https://fcm.googleapis.com",
                 project_id: str = "", timeout: float = 10.0, concurrency: int = 8, name: str = "fcm"):
        self.name = name
        self.credentials_file = credentials_file
        self.api_base_url = api_base_url.rstrip("/")
        self.project_id = project_id
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
        self._credentials = None
        self._token_lock = threading.Lock()
        self._http = None

    def accepts(self, message: Message) -> bool:
        return push_platform(message.to, message.platform) in self.platforms

    # --- auth
    def _load_credentials(self):
        from google.oauth2 import service_account

        credentials = service_account.Credentials.from_service_account_file(self.credentials_file,
                                                                             scopes=[FCM_SCOPE])
        if not self.project_id:
            self.project_id = credentials.project_id or ""
        if not self.project_id:
            raise ProviderError(f"{self.credentials_file} has no project_id; set FCM_PROJECT_ID", permanent=False)
        return credentials

    def access_token(self, *, force: bool = False) -> str:
        """The OAuth2 token from the service account's ``token_uri``, refreshed only when expired."""
        import google.auth.exceptions
        from google.auth.transport.requests import Request

        with self._token_lock:
            if self._credentials is None:
                try:
                    self._credentials = self._load_credentials()
                except (OSError, ValueError) as exc:
                    raise ProviderError(f"FCM credentials: {exc}") from exc
            if force or not self._credentials.valid:
                try:
                    self._credentials.refresh(Request())
                except google.auth.exceptions.GoogleAuthError as exc:
                    raise ProviderError(f"FCM token request failed: {exc}") from exc
            return self._credentials.token

    def _client(self):
        if self._http is None:
            import httpx

            with self._token_lock:
                if self._http is None:
                    self._http = httpx.Client(
                        timeout=self.timeout,
                        limits=httpx.Limits(max_connections=self.concurrency * 2,
                                            max_keepalive_connections=self.concurrency),
                    )
        return self._http

    # --- send
    def payload(self, message: Message) -> dict:
        body: dict[str, Any] = {
            "token": message.to,
            "notification": {"title": message.title, "body": message.body},
        }
        if message.data:
            body["data"] = _stringify(message.data)
        high = message.priority == "high"
        body["android"] = {"priority": "high" if high else "normal"}
        body["apns"] = {"headers": {"apns-priority": "10" if high else "5"}}
        return {"message": body}

    def send(self, message: Message) -> str:
        import httpx

        token = self.access_token()
        url = f"{self.api_base_url}/v1/projects/{self.project_id}/messages:send"
        try:
            response = self._client().post(url, json=self.payload(message),
                                           headers={"Authorization": f"Bearer {token}"})
        except httpx.TimeoutException as exc:
            raise ProviderError(f"FCM timeout: {exc.__class__.__name__}") from exc
        except httpx.HTTPError as exc:
            raise ProviderError(f"FCM connection error: {exc.__class__.__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200:
            name = body.get("name") if isinstance(body, dict) else None
            if not name:
                raise ProviderError("FCM answered 200 without a message name")
            return name
        if response.status_code == 401:
            with self._token_lock:
                if self._credentials is not None:
                    self._credentials.token = None  # refresh before the next call
        raise classify_fcm_response(response.status_code, body, response.headers)

    def close(self) -> None:
        super().close()
        if self._http is not None:
            self._http.close()
            self._http = None


# What ``last_error`` says for a push service's answer: the status and a fixed reason, never the
# peer's body (the endpoint is the client's; its reply is not ours to store or show).
WEBPUSH_REASONS = {
    400: "bad request", 401: "VAPID authorization refused", 403: "VAPID authorization refused",
    404: "subscription not found", 410: "subscription expired or unsubscribed", 413: "payload too large",
    429: "rate limited",
}


def classify_webpush_status(status: int | None, text: str = "", headers=None) -> ProviderError:
    """The error for a push service's answer; ``text`` is a fixed reason of ours (the peer's body is never used)."""
    if not text:
        if status is not None and 300 <= status < 400:
            text = "redirect refused (redirects are not followed)"
        elif status is not None and status >= 500:
            text = "push service error"
        else:
            text = WEBPUSH_REASONS.get(status or 0, "refused")
    message = f"Web Push {status}: {text}".strip()
    if status in (404, 410):
        return ProviderError(message, permanent=True, code=str(status), suppress="unregistered_device")
    if status is None or status == 429 or status >= 500:
        return ProviderError(message, permanent=False, code=str(status or ""),
                             retry_after=retry_after_seconds(headers))
    return ProviderError(message, permanent=True, code=str(status))


class _PushResponse:
    """What pywebpush reads of an answer: status, reason, headers. The body is read (at most
    ``max_bytes`` of it) and dropped."""

    def __init__(self, status_code: int, headers):
        from requests.structures import CaseInsensitiveDict

        self.status_code = status_code
        self.reason = ""
        self.text = ""
        self.headers = CaseInsensitiveDict(
            {k.decode("latin-1"): v.decode("latin-1") for k, v in headers})


class _GuardedPoster:
    """Stands in for the ``requests`` session pywebpush posts with: an httpcore pool whose connections
    go only to addresses ``notifier.netguard`` checked right before connecting (pinned: the socket
    connects to the checked address, TLS still verifies the host name), following no redirect."""

    def __init__(self, *, allow_private: bool, max_connections: int, max_bytes: int = 16 * 1024):
        import httpcore

        from notifier.netguard import GuardedBackend

        self.max_bytes = max_bytes
        self.pool = httpcore.ConnectionPool(
            network_backend=GuardedBackend(allow_private=allow_private), max_connections=max_connections,
            max_keepalive_connections=max(1, max_connections // 2), keepalive_expiry=30.0, retries=0,
        )

    def post(self, url, data=None, headers=None, timeout=None):
        import time

        timeout = float(timeout or 10.0)
        deadline = time.monotonic() + timeout
        timeouts = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        body = data or b""
        if isinstance(body, str):
            body = body.encode()
        request_headers = [(str(k).encode("latin-1"), str(v).encode("latin-1")) for k, v in (headers or {}).items()]
        with self.pool.stream("POST", url, headers=request_headers, content=body,
                              extensions={"timeout": timeouts}) as response:
            received = 0
            for chunk in response.iter_stream():
                received += len(chunk)
                if received > self.max_bytes or time.monotonic() > deadline:
                    break
            return _PushResponse(response.status, response.headers)

    def close(self) -> None:
        self.pool.close()


class WebPushProvider(ConcurrentProvider):
    """Web Push (RFC 8030) with an aes128gcm-encrypted payload and VAPID (RFC 8292) auth, via pywebpush.

    The payload is JSON: ``{"title", "body", "data", "notification_id"}``. The endpoint is the
    client's (a subscription): it must be https on a public host (``allow_private`` lifts both, for
    local push services), checked right before each connection; redirects are not followed (a 3xx
    is a permanent failure) and the push service's answer body is never kept.
    """

    name = "webpush"
    channel = "push"
    platforms = frozenset({"web"})
    URGENCY = {"high": "high", "normal": "normal", "low": "low"}

    def __init__(self, *, private_key: str, subject: str, timeout: float = 10.0, ttl: int = 86400,
                 concurrency: int = 8, name: str = "webpush", allow_private: bool = False):
        import os

        from py_vapid import Vapid

        self.name = name
        self.subject = subject
        self.timeout = timeout
        self.ttl = ttl
        self.concurrency = max(1, concurrency)
        self.allow_private = allow_private
        if private_key.lstrip().startswith("-----BEGIN"):
            self.vapid = Vapid.from_pem(private_key.strip().encode())
        elif os.path.isfile(private_key):
            self.vapid = Vapid.from_file(private_key)
        else:
            self.vapid = Vapid.from_string(private_key=private_key)
        self._poster: _GuardedPoster | None = None
        self._poster_lock = threading.Lock()

    def accepts(self, message: Message) -> bool:
        return push_platform(message.to, message.platform) in self.platforms

    def _client(self) -> _GuardedPoster:
        if self._poster is None:
            with self._poster_lock:
                if self._poster is None:
                    self._poster = _GuardedPoster(allow_private=self.allow_private,
                                                  max_connections=self.concurrency * 2)
        return self._poster

    def send(self, message: Message) -> str:
        import httpcore
        from pywebpush import WebPushException, webpush

        from notifier.netguard import UnsafeAddress, UnsafeURL, validate_push_endpoint

        try:
            subscription = json.loads(message.to)
            endpoint = subscription["endpoint"]
            keys = subscription["keys"]
            keys["p256dh"], keys["auth"]  # noqa: B018 - both are required
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError("Web Push: the device token is not a Push API subscription JSON",
                                permanent=True, code="invalid_subscription") from exc
        try:  # scheme, credentials, literal addresses; the host's addresses are checked as it connects
            validate_push_endpoint(str(endpoint), allow_private=self.allow_private, resolve=False)
        except UnsafeURL as exc:
            raise ProviderError(f"Web Push endpoint refused: {exc}", permanent=True, code="ssrf") from exc
        payload = json.dumps({"title": message.title, "body": message.body, "data": message.data,
                              "notification_id": message.notification_id})
        try:
            response = webpush(
                subscription, data=payload, vapid_private_key=self.vapid,
                vapid_claims={"sub": self.subject}, timeout=self.timeout, ttl=self.ttl,
                headers={"Urgency": self.URGENCY.get(message.priority, "normal")},
                requests_session=self._client(),
            )
        except WebPushException as exc:
            response = exc.response
            if response is None:
                raise ProviderError(f"Web Push error: {exc.message}") from exc
            raise classify_webpush_status(response.status_code, "", response.headers) from exc
        except UnsafeAddress as exc:
            raise ProviderError("Web Push endpoint refused: its host resolves to a private, loopback or "
                                "otherwise non-public address", permanent=True, code="ssrf") from exc
        except httpcore.TimeoutException as exc:
            raise ProviderError(f"Web Push timeout: {exc.__class__.__name__}") from exc
        except (httpcore.UnsupportedProtocol, httpcore.LocalProtocolError) as exc:
            raise ProviderError(f"Web Push request invalid: {exc.__class__.__name__}", permanent=True) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
            raise ProviderError(f"Web Push connection error: {exc.__class__.__name__}") from exc
        if not 200 <= response.status_code < 300:  # pywebpush lets 1xx-202 through
            raise classify_webpush_status(response.status_code, "", response.headers)
        location = (response.headers.get("Location") or "")[:255]
        return location or f"webpush-{message.notification_id}-{endpoint[-12:]}"

    def close(self) -> None:
        super().close()
        if self._poster is not None:
            self._poster.close()
            self._poster = None

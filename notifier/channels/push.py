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


def classify_webpush_status(status: int | None, text: str, headers=None) -> ProviderError:
    message = f"Web Push {status}: {text}".strip()
    if status in (404, 410):
        return ProviderError(message, permanent=True, code=str(status), suppress="unregistered_device")
    if status is None or status == 429 or status >= 500:
        return ProviderError(message, permanent=False, code=str(status or ""),
                             retry_after=retry_after_seconds(headers))
    return ProviderError(message, permanent=True, code=str(status))


class WebPushProvider(ConcurrentProvider):
    """Web Push (RFC 8030) with an aes128gcm-encrypted payload and VAPID (RFC 8292) auth, via pywebpush.

    The payload is JSON: ``{"title", "body", "data", "notification_id"}``.
    """

    name = "webpush"
    channel = "push"
    platforms = frozenset({"web"})
    URGENCY = {"high": "high", "normal": "normal", "low": "low"}

    def __init__(self, *, private_key: str, subject: str, timeout: float = 10.0, ttl: int = 86400,
                 concurrency: int = 8, name: str = "webpush"):
        import os

        from py_vapid import Vapid

        self.name = name
        self.subject = subject
        self.timeout = timeout
        self.ttl = ttl
        self.concurrency = max(1, concurrency)
        if private_key.lstrip().startswith("-----BEGIN"):
            self.vapid = Vapid.from_pem(private_key.strip().encode())
        elif os.path.isfile(private_key):
            self.vapid = Vapid.from_file(private_key)
        else:
            self.vapid = Vapid.from_string(private_key=private_key)
        self._local = threading.local()

    def accepts(self, message: Message) -> bool:
        return push_platform(message.to, message.platform) in self.platforms

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = self._local.session = requests.Session()
        return session

    def send(self, message: Message) -> str:
        import requests
        from pywebpush import WebPushException, webpush

        try:
            subscription = json.loads(message.to)
            endpoint = subscription["endpoint"]
            keys = subscription["keys"]
            keys["p256dh"], keys["auth"]  # noqa: B018 - both are required
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError("Web Push: the device token is not a Push API subscription JSON",
                                permanent=True, code="invalid_subscription") from exc
        payload = json.dumps({"title": message.title, "body": message.body, "data": message.data,
                              "notification_id": message.notification_id})
        try:
            response = webpush(
                subscription, data=payload, vapid_private_key=self.vapid,
                vapid_claims={"sub": self.subject}, timeout=self.timeout, ttl=self.ttl,
                headers={"Urgency": self.URGENCY.get(message.priority, "normal")},
                requests_session=self._session(),
            )
        except WebPushException as exc:
            response = exc.response
            if response is None:
                raise ProviderError(f"Web Push error: {exc.message}") from exc
            raise classify_webpush_status(response.status_code, (response.text or "")[:300],
                                          response.headers) from exc
        except requests.Timeout as exc:
            raise ProviderError(f"Web Push timeout: {exc.__class__.__name__}") from exc
        except (requests.RequestException, OSError) as exc:
            raise ProviderError(f"Web Push connection error: {exc.__class__.__name__}: {exc}") from exc
        return response.headers.get("Location") or f"webpush-{message.notification_id}-{endpoint[-12:]}"

"""Outbound webhooks, signed per the Standard Webhooks convention.

Each message is one event for one endpoint: ``message.to`` is the endpoint id,
``message.body`` the exact JSON body. The endpoint's URL and secret are looked
up at send time (one call per chunk), so a deleted or disabled endpoint stops
receiving, even on retries. Headers:

    webhook-id: <notification id, the same on every retry>
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">

keyed with the base64-decoded part of the endpoint secret ``whsec_<base64>``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import httpcore

from notifier.netguard import GuardedBackend, UnsafeAddress

from .base import Message, Provider, ProviderError

SECRET_PREFIX = "whsec_"
USER_AGENT = "notifier-webhooks/1"


@dataclass(frozen=True)
class Endpoint:
    url: str
    secret: str
    active: bool = True
    disabled_reason: str = ""


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _secret_key(secret: str) -> bytes:
    return base64.b64decode(secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one attempt."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_key(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: dict[str, str], body: bytes, *, tolerance: float = 300, now=time.time) -> bool:
    """Check a received webhook (what a client does; used by the tests and documented for clients)."""
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now() - ts) > tolerance:
        return False
    expected = sign(secret, msg_id, ts, body).split(",", 1)[1]
    for candidate in headers.get("webhook-signature", "").split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


def classify_status(status: int, reason: str) -> ProviderError | None:
    """2xx is success; 408, 429 and 5xx are retried; other answers (3xx: redirects are not followed, 4xx) are not."""
    if 200 <= status < 300:
        return None
    text = f"endpoint answered HTTP {status}" + (f": {reason}" if reason else "")
    permanent = not (status in (408, 425, 429) or status >= 500)
    return ProviderError(text, permanent=permanent, code=str(status))


class WebhookProvider(Provider):
    name = "http"
    channel = "webhook"

    def __init__(self, *, resolve_endpoints: Callable[[list[str]], dict[str, Endpoint]], timeout: float = 10.0,
                 max_response_bytes: int = 64 * 1024, allow_private: bool = False, clock=time.time):
        self.resolve_endpoints = resolve_endpoints
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.clock = clock
        self.pool = httpcore.ConnectionPool(
            network_backend=GuardedBackend(allow_private=allow_private), max_connections=20,
            max_keepalive_connections=10, keepalive_expiry=30.0, retries=0,
        )

    def send_many(self, messages: Iterable[Message]) -> list[str | ProviderError]:
        messages = list(messages)
        endpoints = self.resolve_endpoints(sorted({m.to for m in messages}))
        results: list[str | ProviderError] = []
        for message in messages:
            endpoint = endpoints.get(message.to)
            if endpoint is None:
                results.append(ProviderError("webhook endpoint no longer exists", permanent=True))
            elif not endpoint.active:
                results.append(ProviderError(f"webhook endpoint disabled: {endpoint.disabled_reason}",
                                             permanent=True))
            else:
                results.append(self._post(endpoint, message))
        return results

    def send(self, message: Message) -> str:
        result = self.send_many([message])[0]
        if isinstance(result, ProviderError):
            raise result
        return result

    def _post(self, endpoint: Endpoint, message: Message) -> str | ProviderError:
        body = (message.body or "").encode()
        msg_id = message.notification_id
        timestamp = int(self.clock())
        headers = [
            (b"content-type", b"application/json"),
            (b"user-agent", USER_AGENT.encode()),
            (b"webhook-id", msg_id.encode()),
            (b"webhook-timestamp", str(timestamp).encode()),
            (b"webhook-signature", sign(endpoint.secret, msg_id, timestamp, body).encode()),
        ]
        deadline = time.monotonic() + self.timeout
        timeouts = {"connect": self.timeout, "read": self.timeout, "write": self.timeout, "pool": self.timeout}
        try:
            with self.pool.stream("POST", endpoint.url, headers=headers, content=body,
                                  extensions={"timeout": timeouts}) as response:
                received = 0
                for chunk in response.iter_stream():
                    # Read (and drop) at most max_response_bytes, within the overall deadline.
                    received += len(chunk)
                    if received > self.max_response_bytes or time.monotonic() > deadline:
                        break
                reason = (response.extensions.get("reason_phrase") or b"").decode("latin-1", "replace")
                error = classify_status(response.status, reason)
        except UnsafeAddress as exc:
            return ProviderError(str(exc), permanent=True, code="ssrf")
        except httpcore.TimeoutException as exc:
            return ProviderError(f"webhook timed out: {exc.__class__.__name__}", permanent=False)
        except (httpcore.UnsupportedProtocol, httpcore.LocalProtocolError) as exc:
            return ProviderError(f"webhook request invalid: {exc}", permanent=True)
        except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
            return ProviderError(f"webhook connection error: {exc.__class__.__name__}: {exc}", permanent=False)
        if error is not None:
            return error
        return msg_id

    def close(self) -> None:
        self.pool.close()

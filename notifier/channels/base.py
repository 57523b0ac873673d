"""The one interface every channel provider implements."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable


class ProviderError(Exception):
    """A provider could not take a message.

    ``permanent`` errors (invalid address, unregistered device, 5xx SMTP reply)
    fail the notification at once; transient ones (timeouts, 5xx HTTP, 429,
    connection errors) are retried. ``retry_after`` is the provider's own hint,
    in seconds, when it gave one.

    ``suppress`` names why the address itself is dead (``hard_bounce``,
    ``invalid_number``, ``unregistered_device``, ``carrier_opt_out``): the
    address goes on the suppression list and, for a device token, the device
    is deactivated.

    ``bad_input`` (always permanent): the message itself cannot be sent (a
    header Python's email package refuses, an address that cannot be
    encoded), found before or without the provider's answer. It says nothing
    about the provider's health, so the circuit breaker does not count it at
    all (``notifier.channels.failover``).
    """

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None,
                 code: str | None = None, suppress: str = "", bad_input: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent or bad_input
        self.retry_after = retry_after
        self.code = code
        self.suppress = suppress
        self.bad_input = bad_input

    def __str__(self) -> str:  # pragma: no cover - trivial
        kind = "permanent" if self.permanent else "transient"
        return f"{self.message} ({kind})"


@dataclass
class Message:
    """A rendered notification, ready for one provider call."""

    notification_id: str
    channel: str
    to: str
    category: str = "transactional"
    priority: str = "normal"
    subject: str = ""
    body: str = ""
    html: str = ""
    title: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    platform: str = ""
    allow_unsubscribe: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    device_id: int | None = None  # push: the registered device this message goes to


class Provider:
    """Base class: subclasses set ``name``/``channel`` and implement ``send``.

    ``send`` returns the provider's message id or raises ``ProviderError``.
    ``send_many`` may be overridden to reuse a connection across a chunk; it
    returns, per message and in order, either a message id or a ProviderError.
    """

    name: str = ""
    channel: str = ""
    uses_breaker: bool = True  # local providers that cannot fail (console, null, inbox) skip the circuit breaker

    @property
    def parallelism(self) -> int:
        """How many messages one ``send_many`` call sends at once (a worker never hands it fewer
        at a time than this, when it has them)."""
        return 1

    def accepts(self, message: Message) -> bool:
        """Can this provider carry ``message``? (Push providers pick by device platform.)"""
        return True

    def send(self, message: Message) -> str:
        raise NotImplementedError

    def send_many(self, messages: Iterable[Message]) -> list[str | ProviderError]:
        results: list[str | ProviderError] = []
        for message in messages:
            try:
                results.append(self.send(message))
            except ProviderError as exc:
                results.append(exc)
        return results

    def close(self) -> None:
        """Release pooled connections (called at worker shutdown)."""


def retry_after_seconds(headers) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as seconds from now, or None."""
    if not headers:
        return None
    value = next((headers[key] for key in headers if str(key).lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        import time
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class ConcurrentProvider(Provider):
    """A provider whose calls are independent HTTP requests: a chunk is sent by a few threads at once.

    Subclasses set ``self.concurrency`` and implement ``send``.
    """

    concurrency: int = 8
    _pool = None

    @property
    def parallelism(self) -> int:
        return self.concurrency

    def send_many(self, messages: Iterable[Message]) -> list[str | ProviderError]:
        messages = list(messages)
        if len(messages) <= 1 or self.concurrency <= 1:
            return super().send_many(messages)
        import threading
        from concurrent.futures import ThreadPoolExecutor

        lock = self.__dict__.setdefault("_pool_lock", threading.Lock())
        with lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"{self.name}-send")
        return list(self._pool.map(self._send_one, messages))

    def _send_one(self, message: Message) -> str | ProviderError:
        try:
            return self.send(message)
        except ProviderError as exc:
            return exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

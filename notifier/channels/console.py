"""Console and null providers: local development and benchmarks."""
from __future__ import annotations

import logging
import uuid

from notifier.pii import mask_address

from .base import Message, Provider

logger = logging.getLogger("notifier.console")


class ConsoleProvider(Provider):
    """Logs a masked summary of the message and accepts it."""

    name = "console"
    uses_breaker = False

    def __init__(self, channel: str):
        self.channel = channel

    def send(self, message: Message) -> str:
        logger.info(
            "console %s notification=%s to=%s title=%r body_chars=%d",
            message.channel, message.notification_id, mask_address(message.channel, message.to),
            message.subject or message.title, len(message.body or ""),
        )
        return f"console-{uuid.uuid4().hex}"


class NullProvider(Provider):
    """Accepts everything instantly; for benchmarks."""

    name = "null"
    uses_breaker = False

    def __init__(self, channel: str):
        self.channel = channel

    def send(self, message: Message) -> str:
        return f"null-{message.notification_id}"

    def send_many(self, messages):
        return [f"null-{m.notification_id}" for m in messages]


class InboxProvider(Provider):
    """The in-app channel: the stored row is the inbox item, so storing is sending."""

    name = "inbox"
    channel = "in_app"
    uses_breaker = False

    def __init__(self, channel: str = "in_app"):
        self.channel = channel

    def send(self, message: Message) -> str:
        return f"inbox-{message.notification_id}"

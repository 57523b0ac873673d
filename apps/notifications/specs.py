"""The types passed between the stages: a validated request (``NotificationSpec``), what a create answers
with (``Created``), what happened to a claimed notification (``Result``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .models import Notification, Status


@dataclass
class NotificationSpec:
    """A validated request to send one notification (the output of input validation)."""

    channel: str
    category: str
    priority: str
    content: dict[str, Any]
    recipient: Any = None  # apps.recipients.models.Recipient or None
    to: str = ""
    template: str = ""
    locale: str = ""
    scheduled_for: datetime | None = None
    expires_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    group_key: str = ""
    # The owner (the API key's project, set by validation); None: the ``default`` project.
    project_id: int | None = None
    # A broadcast (apps.broadcasts): the request names a topic (apps.topics Topic) instead of a recipient, and
    # each notification made from it carries the broadcast's id.
    topic: Any = None
    broadcast_id: Any = None
    # Workflows (apps.workflows): {"key", "window_seconds", "template"} and [{"channel", "after_seconds", "unless"}]
    digest: dict[str, Any] | None = None
    fallback: list[dict[str, Any]] | None = None
    # Set by policy (preferences, quiet hours) before insert:
    status: str = ""
    status_detail: str = ""
    hold_until: datetime | None = None


def initial_state(spec: NotificationSpec, now: datetime) -> tuple[str, datetime | None, str]:
    """Status, next_attempt_at and event detail for a new notification."""
    if spec.status == Status.SUPPRESSED:
        return Status.SUPPRESSED, None, spec.status_detail
    if spec.digest is not None:  # workflows: held until apps.workflows releases its digest (no time of its own)
        return Status.SCHEDULED, None, f"held for digest {spec.digest['key']!r}"
    release = spec.scheduled_for if spec.scheduled_for and spec.scheduled_for > now else None
    if spec.hold_until and (release is None or spec.hold_until > release):
        return Status.SCHEDULED, spec.hold_until, spec.status_detail or f"held until {spec.hold_until.isoformat()}"
    if release is not None:
        return Status.SCHEDULED, release, f"scheduled for {release.isoformat()}"
    return Status.QUEUED, None, ""


class Created:
    """What the batch endpoint needs of a notification it created: no model instance per row."""

    __slots__ = ("id", "channel", "category", "priority", "status")

    def __init__(self, id, channel, category, priority, status):  # noqa: A002 - the notification's id (text)
        self.id, self.channel, self.category, self.priority, self.status = id, channel, category, priority, status


@dataclass
class Result:
    """What happened to one claimed notification."""

    notification: Notification
    status: str
    provider: str = ""
    provider_message_id: str = ""
    error: str = ""
    detail: str = ""
    attempted: bool = True  # a provider was called (counts towards `attempts`)
    next_attempt_at: datetime | None = None
    dead_letter: bool = False

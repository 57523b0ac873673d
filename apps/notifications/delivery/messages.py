"""What a claimed chunk is sent as: its recipients and devices loaded in bulk, each notification's targets
(``notifier.addresses.destination``; a push's tokens or devices) and one provider ``Message`` per target."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from notifier.addresses import destination
from notifier.channels.base import Message

from ..categories import category_get
from ..models import Notification


def attach_recipients(rows: list[Notification]) -> None:
    """Load the chunk's recipients in one query and cache each row's ``recipient``, None included: each
    later read (the before-send checks, targets, result hooks) is then a cache hit, not the descriptor's
    lookup of the key."""
    recipients = {}
    recipient_ids = {n.recipient_id for n in rows if n.recipient_id}
    if recipient_ids:
        from apps.recipients.selectors import recipients_by_id

        recipients = recipients_by_id(recipient_ids)
    remember = Notification.recipient.field.set_cached_value
    for n in rows:
        if n.recipient_id is None:
            remember(n, None)
        elif (recipient := recipients.get(n.recipient_id)) is not None:
            remember(n, recipient)
        else:
            n.recipient = None  # deleted since: as the descriptor sets it (recipient_id None too)


def load_devices(rows: list[Notification]) -> dict[int, list[Any]]:
    """The active devices of the recipients of the chunk's push notifications, in one query."""
    from apps.recipients.models import Device

    recipient_ids = {n.recipient_id for n in rows if n.channel == "push" and n.recipient_id}
    devices: dict[int, list[Any]] = defaultdict(list)
    if recipient_ids:
        for device in Device.objects.filter(recipient_id__in=recipient_ids, active=True).order_by("id"):
            devices[device.recipient_id].append(device)
    return devices


def targets(notification: Notification, devices: dict[int, list[Any]]) -> list[tuple[str, str, int | None]]:
    """(address, platform, device id) triples to send this notification to."""
    recipient = notification.recipient
    channel = notification.channel
    if channel == "push":
        tokens = notification.content.get("device_tokens") or []
        if tokens:
            return [(t, "", None) for t in tokens]
        return [(d.token, d.platform, d.id) for d in devices.get(notification.recipient_id, [])]
    address = destination(channel, notification.to, recipient)
    return [(address, "", None)] if address else []


def message(notification: Notification, address: str, platform: str, device_id: int | None = None, *,
             allow_unsubscribe: bool | None = None) -> Message:
    """One provider call's message. ``allow_unsubscribe`` (the category's opt-out), when the caller
    already knows it: deliver_chunk looks each category up once per chunk, not once per message."""
    content = notification.content or {}
    if allow_unsubscribe is None:
        category = category_get(notification.category)
        allow_unsubscribe = bool(category and category.allow_opt_out)
    return Message(
        notification_id=str(notification.id), channel=notification.channel, to=address,
        category=notification.category, priority=notification.priority,
        subject=content.get("subject", ""), body=content.get("body", ""), html=content.get("html", ""),
        title=content.get("title", ""), data=content.get("data") or {}, platform=platform,
        allow_unsubscribe=allow_unsubscribe, device_id=device_id,
    )


def allow_unsubscribe(slug: str) -> bool:
    """The category lets its recipients opt out (an unsubscribe link and header)."""
    category = category_get(slug)
    return bool(category and category.allow_opt_out)

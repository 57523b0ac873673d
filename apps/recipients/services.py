"""Writes for recipients, devices and preferences."""
from __future__ import annotations

from datetime import time
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifier.pii import scrub_text

from .models import Device, Preference, Recipient

PROFILE_FIELDS = ("email", "phone", "timezone", "locale", "name")


def recipient_upsert(*, external_id: str, data: dict[str, Any], project_id: int | None = None
                     ) -> tuple[Recipient, bool]:
    """Create the project's recipient (None: the default project's) or update the fields given in ``data``.
    Returns (recipient, created)."""
    if project_id is None:
        from apps.apikeys.models import default_project_id

        project_id = default_project_id()
    values = {k: v for k, v in data.items() if k in PROFILE_FIELDS}
    with transaction.atomic():
        recipient = Recipient.objects.select_for_update().filter(project_id=project_id,
                                                                 external_id=external_id).first()
        if recipient is None:
            recipient, created = Recipient.objects.get_or_create(project_id=project_id, external_id=external_id,
                                                                 defaults=values)
            if created:
                return recipient, True
        for name, value in values.items():
            setattr(recipient, name, value)
        recipient.save()
    return recipient, False


def recipient_erase(*, recipient: Recipient) -> dict[str, int]:
    """Delete the recipient with their devices, preferences and topic subscriptions; keep their notifications,
    anonymised.

    Their notifications lose the link to them, their address, content and
    metadata; event details are scrubbed of addresses. Notifications not yet
    sending are cancelled. Returns counts.
    """
    from apps.notifications import lifecycle
    from apps.notifications.models import Notification, NotificationEvent, Status

    now = timezone.now()
    with transaction.atomic():
        # First: waits for a topic subscribe that holds the row (FOR KEY SHARE), so the delete below
        # takes its subscriptions too, and later subscribes no longer find the recipient.
        Recipient.objects.select_for_update().filter(pk=recipient.pk).first()
        notifications = Notification.objects.filter(recipient=recipient)
        pending_ids = list(notifications.filter(status__in=[Status.QUEUED, Status.SCHEDULED])
                           .select_for_update().values_list("id", flat=True))
        if pending_ids:
            lifecycle.transition(Notification.objects.filter(id__in=pending_ids),
                                 allowed=[Status.QUEUED, Status.SCHEDULED], to=Status.CANCELLED, now=now,
                                 detail="cancelled: the recipient was deleted", fields={"next_attempt_at": None})
        ids = list(notifications.values_list("id", flat=True))
        anonymised = Notification.objects.filter(id__in=ids).update(
            recipient=None, to="", content={}, metadata={}, last_error="", updated_at=now)
        events = list(NotificationEvent.objects.filter(notification_id__in=ids).exclude(detail="")
                      .only("id", "detail"))
        for event in events:
            event.detail = scrub_text(event.detail)
        NotificationEvent.objects.bulk_update(events, ["detail"], batch_size=1000)
        devices, _ = Device.objects.filter(recipient=recipient).delete()
        Preference.objects.filter(recipient=recipient).delete()
        recipient.delete()
    return {"notifications": anonymised, "cancelled": len(pending_ids), "devices": devices}


def device_register(*, recipient: Recipient, platform: str, token: str) -> Device:
    """Register (or re-activate) a device. Within a project a token belongs to one recipient: the latest one
    to register it (another project's recipient with the same token keeps it)."""
    with transaction.atomic():
        Device.objects.filter(platform=platform, token=token, recipient__project_id=recipient.project_id) \
            .exclude(recipient=recipient).delete()
        device, created = Device.objects.get_or_create(recipient=recipient, token=token,
                                                       defaults={"platform": platform})
        if not created and (not device.active or device.platform != platform):
            device.active, device.deactivated_reason, device.platform = True, "", platform
            device.save(update_fields=["active", "deactivated_reason", "platform"])
    return device


def device_delete(*, device: Device) -> None:
    device.delete()


def preferences_update(*, recipient: Recipient, channels: dict[str, bool | None] | None = None,
                       categories: dict[str, dict[str, bool | None] | None] | None = None,
                       quiet_hours: tuple[time, time] | None = None, quiet_hours_given: bool = False,
                       topics: dict[str, dict[str, bool | None] | None] | None = None) -> None:
    """Merge a partial preferences document: given keys change, others stay; ``None`` removes a setting.
    ``topics`` (per topic key of the recipient's project) is stored by ``apps.topics``."""
    from apps.notifications.models import Category
    from apps.topics.services import topic_preferences_merge

    channels = channels or {}
    categories = categories or {}
    category_ids = dict(Category.objects.filter(slug__in=list(categories)).values_list("slug", "id"))
    remove = Q(pk__in=[])
    create: list[Preference] = []
    for channel, enabled in channels.items():
        remove |= Q(category__isnull=True, channel=channel)
        if enabled is not None:
            create.append(Preference(recipient=recipient, channel=channel, enabled=enabled))
    for slug, per_channel in categories.items():
        category_id = category_ids[slug]
        if per_channel is None:
            remove |= Q(category_id=category_id)
            continue
        for channel, enabled in per_channel.items():
            remove |= Q(category_id=category_id, channel=channel)
            if enabled is not None:
                create.append(Preference(recipient=recipient, category_id=category_id, channel=channel,
                                         enabled=enabled))
    with transaction.atomic():
        Recipient.objects.select_for_update().filter(pk=recipient.pk).first()  # one writer per recipient
        Preference.objects.filter(remove, recipient=recipient).delete()
        Preference.objects.bulk_create(create)
        topic_preferences_merge(recipient=recipient, topics=topics or {})
        if quiet_hours_given:
            recipient.quiet_hours_start, recipient.quiet_hours_end = quiet_hours or (None, None)
            recipient.save(update_fields=["quiet_hours_start", "quiet_hours_end", "updated_at"])

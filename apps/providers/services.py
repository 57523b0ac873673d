"""Writes: the suppression list, device deactivation, Twilio status callbacks, unsubscribes."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.notifications import lifecycle
from apps.notifications.models import Notification, Status
from notifier.addresses import canonical_address, destination

from .models import Suppression, SuppressionReason

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SuppressionInput:
    channel: str
    address: str
    reason: str
    detail: str = ""
    category: str = ""
    notification_id: object = None


def suppressions_record(*, items: list[SuppressionInput]) -> int:
    """Add (or refresh) suppressions in one statement. Returns how many were written."""
    rows = {}
    for item in items:
        address = canonical_address(item.channel, item.address)
        if not address:
            continue
        rows[(address, item.category)] = Suppression(
            address=address, channel=item.channel, category=item.category, reason=item.reason,
            detail=item.detail[:2000], notification_id=item.notification_id,
        )
    if not rows:
        return 0
    Suppression.objects.bulk_create(
        list(rows.values()), update_conflicts=True, unique_fields=["address", "category"],
        update_fields=["reason", "detail", "notification_id", "channel", "updated_at"],
    )
    return len(rows)


def suppressions_lift(*, ids, by: str) -> int:
    """Delete suppression entries, so their addresses are sent to again; ``by`` (who or what lifted
    them) is logged, since the entry itself is gone. Returns how many were deleted."""
    deleted = Suppression.objects.filter(id__in=list(ids)).delete()[1].get(Suppression._meta.label, 0)
    if deleted:
        logger.info("lifted %d suppression entries (%s)", deleted, by)
    return deleted


def provider_outcomes_apply(items) -> None:
    """After-send hook: suppress dead addresses and deactivate unregistered devices, in bulk."""
    from apps.recipients.models import Device

    suppress: list[SuppressionInput] = []
    device_ids: dict[int, str] = {}
    device_tokens: dict[str, str] = {}
    for notification, message, outcome in items:
        error = outcome.error
        if error is None or not error.permanent or not error.suppress:
            continue
        detail = f"{outcome.provider}: {error.message}"
        suppress.append(SuppressionInput(channel=message.channel, address=message.to, reason=error.suppress,
                                         detail=detail, notification_id=notification.id))
        if error.suppress == SuppressionReason.UNREGISTERED_DEVICE:
            if message.device_id is not None:
                device_ids[message.device_id] = detail
            else:
                device_tokens[message.to] = detail
    if not suppress:
        return
    with transaction.atomic():
        suppressions_record(items=suppress)
        if device_ids:
            reason = next(iter(device_ids.values()))[:255]
            Device.objects.filter(id__in=list(device_ids), active=True).update(active=False,
                                                                               deactivated_reason=reason)
        if device_tokens:
            reason = next(iter(device_tokens.values()))[:255]
            Device.objects.filter(token__in=list(device_tokens), active=True).update(active=False,
                                                                                     deactivated_reason=reason)
    logger.info("suppressed %d addresses, deactivated %d devices", len(suppress),
                len(device_ids) + len(device_tokens))


# --- Twilio status callbacks ---------------------------------------------------------

TWILIO_DELIVERED = {"delivered", "read"}
TWILIO_FAILED = {"failed", "undelivered"}
TWILIO_INVALID_NUMBER = {"21211", "21614", "30005", "30006"}
TWILIO_OPTED_OUT = {"21610"}


def sms_status_callback_apply(*, sid: str, message_status: str, error_code: str = "", error_message: str = "",
                              now: datetime | None = None) -> str:
    """Apply a Twilio status callback. Returns what happened: ``delivered``, ``failed``, ``ignored`` or ``unknown``.

    Only a ``sent`` notification moves (to ``delivered`` or ``failed``), so a
    repeated callback changes nothing and a late ``sent`` or ``failed`` never
    overwrites ``delivered``.
    """
    now = now or timezone.now()
    status = (message_status or "").strip().lower()
    if status in TWILIO_DELIVERED:
        new = Status.DELIVERED
    elif status in TWILIO_FAILED:
        new = Status.FAILED
    else:
        new = None
    with transaction.atomic():
        notification = (Notification.objects.select_for_update(of=("self",))
                        .filter(provider_message_id=sid, channel="sms").select_related("recipient").first())
        if notification is None:
            return "unknown"
        if new is None or notification.status != Status.SENT:
            return "ignored"
        error = f"Twilio {status}" + (f" {error_code}" if error_code else "") + (
            f": {error_message}" if error_message else "")
        if new == Status.DELIVERED:
            fields, detail = {"delivered_at": now}, f"twilio: {status}"
        else:
            fields, detail = {"last_error": error}, error
        lifecycle.transition(Notification.objects.filter(pk=notification.pk), allowed=[Status.SENT], to=new,
                             detail=detail, now=now, fields=fields, event_provider=True)
        from apps.webhooks.services import webhook_events_emit

        webhook_events_emit(event=f"notification.{new}", notification_ids=[notification.pk], now=now)
        reason = (SuppressionReason.INVALID_NUMBER if error_code in TWILIO_INVALID_NUMBER else
                  SuppressionReason.CARRIER_OPT_OUT if error_code in TWILIO_OPTED_OUT else "")
        address = destination("sms", notification.to, notification.recipient)
        if new == Status.FAILED and reason and address:
            suppressions_record(items=[SuppressionInput(channel="sms", address=address, reason=reason,
                                                        detail=error, notification_id=notification.id)])
    return new


# --- unsubscribe -------------------------------------------------------------------

def unsubscribe_apply(*, notification_id: str) -> Suppression | None:
    """Suppress the address a notification went to, for that notification's category."""
    notification = Notification.objects.select_related("recipient").filter(pk=notification_id).first()
    if notification is None:
        return None
    address = notification.to or (destination(notification.channel, "", notification.recipient)
                                  if notification.channel in ("email", "sms") else "")
    if not address:
        return None
    suppressions_record(items=[SuppressionInput(
        channel=notification.channel, address=address, reason=SuppressionReason.UNSUBSCRIBED,
        category=notification.category, detail="List-Unsubscribe", notification_id=notification.id)])
    return Suppression.objects.get(address=canonical_address(notification.channel, address),
                                   category=notification.category)

"""Digests: hold a recipient's notifications of one channel and key for a window, then send one message.

Life of a digest (docs/workflows.md):

1. **Hold.** A notification whose request (or category) names a digest is inserted ``scheduled`` with no
   release time of its own, and in the same transaction joins the open ``DigestGroup`` of its project,
   channel, recipient (or ``to`` address) and key, or opens one whose window ends ``window_seconds``
   later (``hold``: ``INSERT ... ON CONFLICT`` on the partial unique index of open groups, so concurrent
   creates join one group). A suppressed notification (opted out, suppression list) is not held.
2. **Release.** The dispatcher (``notifier.dispatch_due``) takes each open group whose window has ended
   with ``FOR UPDATE SKIP LOCKED`` (two dispatchers never release one group), locks its members that are
   still ``scheduled`` (cancelled and expired ones drop out), and creates the digest message through
   ``notifications_create``, so the acceptance policy (preferences, suppression, quiet hours, caps), the
   owner project, publishing and retries are those of any notification. Its content is rendered from the
   digest's template with every item (``digest_context``), or is a built-in summary. The members become
   ``sending`` (claimed by no worker: "released in digest <id>"), the group ``released``.
3. **Settle.** Once the digest message reaches a final status (sent, delivered, failed, suppressed,
   cancelled, expired), the next dispatcher run gives its members the same status, ``provider``
   ``digest`` and ``provider_message_id`` the digest message's id; the group is ``settled``.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from apps.notifications import lifecycle
from apps.notifications.models import Channel, Notification, Status
from notifier.interrupts import INTERRUPTS
from notifier.sms import sms_info

from .models import DigestGroup, DigestMember, DigestState

logger = logging.getLogger(__name__)

GROUPS = DigestGroup._meta.db_table
MEMBERS = DigestMember._meta.db_table
NOTIFICATIONS = Notification._meta.db_table
# The digest message's statuses that its members take over (and the group is settled).
FINAL = (Status.SENT, Status.DELIVERED, Status.FAILED, Status.SUPPRESSED, Status.CANCELLED, Status.EXPIRED)
SMS_SUMMARY_CHARS = 600  # at most 10 segments whatever the encoding (UCS-2: 67 characters a segment)
PROVIDER = "digest"


class KeyRef:
    """What ``notifications_create`` reads of an API key: its pk."""

    __slots__ = ("pk",)

    def __init__(self, pk):
        self.pk = pk


def address_of(spec) -> str:
    """Whom a digest goes to: the recipient (by primary key) or the direct address."""
    return f"r:{spec.recipient.pk}" if spec.recipient is not None else spec.to


# --- 1. hold -----------------------------------------------------------------------------------------

def hold(entries: list[tuple], now: datetime) -> None:
    """Add held notifications to their open groups (opening them), in the caller's transaction.

    ``entries``: ``(spec, notification_id, api_key_id)`` of notifications inserted ``scheduled`` for a
    digest. Groups are taken in one order (sorted), so concurrent transactions never deadlock on them."""
    by_group: dict[tuple, list] = {}
    for spec, notification_id, api_key_id in entries:
        key = (spec.project_id, spec.channel, address_of(spec), spec.digest["key"])
        by_group.setdefault(key, []).append((spec, notification_id, api_key_id))
    members = []
    with connection.cursor() as cursor:
        for (project_id, channel, address, key), items in sorted(by_group.items(), key=lambda kv: kv[0][1:]):
            spec, _, api_key_id = items[0]
            window = spec.digest["window_seconds"]
            cursor.execute(
                f"""
                INSERT INTO {GROUPS} AS g (project_id, channel, address, recipient_id, "to", key, template,
                    category, priority, api_key_id, window_seconds, opened_at, release_at, items, state)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (project_id, channel, address, key) WHERE state = %s
                DO UPDATE SET items = g.items + EXCLUDED.items
                RETURNING id
                """,
                [project_id, channel, address, spec.recipient.pk if spec.recipient is not None else None, spec.to,
                 key, spec.digest.get("template") or "", spec.category, spec.priority, api_key_id, window, now,
                 now + timedelta(seconds=window), len(items), DigestState.OPEN, DigestState.OPEN],
            )
            group_id = cursor.fetchone()[0]
            members += [DigestMember(notification_id=notification_id, group_id=group_id)
                        for _, notification_id, _ in items]
    DigestMember.objects.bulk_create(members)


# --- 2. release --------------------------------------------------------------------------------------

def release_due(*, now: datetime, limit: int = 200) -> int:
    """Release every open group whose window ended by ``now`` (one transaction each); returns how many."""
    released = 0
    for _ in range(limit):
        with transaction.atomic():
            group = (DigestGroup.objects.select_for_update(skip_locked=True)
                     .filter(state=DigestState.OPEN, release_at__lte=now).order_by("release_at").first())
            if group is None:
                break
            _release(group)
        released += 1
    return released


def _release(group: DigestGroup) -> None:
    now = timezone.now()
    members = list(
        Notification.objects.select_for_update().filter(
            id__in=DigestMember.objects.filter(group=group).values("notification_id"), status=Status.SCHEDULED)
        .order_by("id").values("id", "content", "metadata", "category", "created_at", "channel", "priority")
    )
    group.released_at = now
    if not members:  # all cancelled or expired meanwhile
        group.state = DigestState.EMPTY
        group.save(update_fields=["state", "released_at"])
        return
    try:
        with transaction.atomic():
            digest = _create_digest_message(group, members)
    except INTERRUPTS:
        raise
    except Exception as exc:  # noqa: BLE001 - its members must still end: failed with the reason
        logger.exception("digest group %s could not be released; its %d notifications fail", group.id, len(members))
        _finish_members(members, allowed=Status.SCHEDULED, status=Status.FAILED, now=now,
                        detail=f"the digest could not be sent: {type(exc).__name__}: {exc}"[:500])
        group.state = DigestState.SETTLED
        group.save(update_fields=["state", "released_at"])
        return
    ids = [m["id"] for m in members]
    lifecycle.transition(Notification.objects.filter(id__in=ids), allowed=[Status.SCHEDULED], to=Status.SENDING,
                         detail=f"released in digest {digest.id} with {len(ids)} items", now=now,
                         fields={"claimed_at": None})
    group.state = DigestState.RELEASED
    group.digest_id = digest.id
    group.save(update_fields=["state", "released_at", "digest"])


def _create_digest_message(group: DigestGroup, members: list[dict]) -> Notification:
    from apps.notifications.intake.create import notifications_create
    from apps.notifications.specs import NotificationSpec
    from apps.recipients.models import Recipient

    recipient = Recipient.objects.filter(pk=group.recipient_id).first() if group.recipient_id else None
    if recipient is None and not group.to:  # SET_NULL: its recipient was deleted
        raise LookupError("its recipient was deleted")
    locale = recipient.locale if recipient is not None else ""
    context = digest_context(group, members)
    content = digest_content(group.channel, context, template=group.template, locale=locale)
    spec = NotificationSpec(
        channel=group.channel, category=group.category, priority=group.priority, content=content,
        recipient=recipient, to=group.to, template=group.template, locale=locale,
        metadata={"digest": {"key": group.key, "items": len(members)}}, project_id=group.project_id,
    )
    return notifications_create(specs=[spec], api_key=KeyRef(group.api_key_id) if group.api_key_id else None)[0]


def digest_context(group: DigestGroup, members: list[dict]) -> dict:
    """The digest template's context (documented in docs/workflows.md)."""
    items = []
    for member in members:
        content = member["content"] or {}
        items.append({
            "id": str(member["id"]), "category": member["category"], "created_at": member["created_at"].isoformat(),
            "subject": content.get("subject", ""), "title": content.get("title", ""), "body": content.get("body", ""),
            "data": content.get("data") or {}, "metadata": member["metadata"] or {},
        })
    return {
        "count": len(items), "items": items, "key": group.key, "window_seconds": group.window_seconds,
        "first_at": items[0]["created_at"], "last_at": items[-1]["created_at"],
    }


def digest_content(channel: str, context: dict, *, template: str, locale: str) -> dict:
    """The digest message's content: ``template`` rendered with ``context``, or the built-in summary
    (also when the template can no longer be found or rendered, which is logged)."""
    if template:
        from rest_framework.exceptions import ValidationError

        from apps.notifications.content import render_template

        try:
            return render_template(slug=template, channel=channel, context=context, locale=locale)
        except ValidationError as exc:
            logger.warning("digest template %r (%s) failed, the built-in summary is sent: %s", template, channel,
                           exc.detail)
    return builtin_content(channel, context)


def builtin_content(channel: str, context: dict) -> dict:
    """"3 new notifications" and one line per item (its subject or title, and body)."""
    count = context["count"]
    headline = f"{count} new notification{'' if count == 1 else 's'}"
    lines = []
    for item in context["items"]:
        heading = item["subject"] or item["title"]
        lines.append(f"{heading}: {item['body']}" if heading and item["body"] else heading or item["body"])
    if channel == Channel.EMAIL:
        return {"subject": headline, "body": "\n".join(f"- {line}" for line in lines)}
    if channel == Channel.SMS:
        body = f"{headline}: " + "; ".join(lines)
        if len(body) > SMS_SUMMARY_CHARS:
            body = body[:SMS_SUMMARY_CHARS - 1] + "…"
        return {"body": body, "sms": sms_info(body).as_dict()}
    content = {"title": headline, "body": "\n".join(lines)[:100_000]}
    if channel == Channel.IN_APP:
        content["data"] = {"digest": context["key"], "items": [item["id"] for item in context["items"]]}
    return content


# --- 3. settle ---------------------------------------------------------------------------------------

def settle(*, limit: int = 500) -> int:
    """Give the members of released groups whose digest message is final its status; returns how many groups."""
    now = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT g.id, g.digest_id, n.status, n.sent_at, n.delivered_at, n.last_error
                FROM {GROUPS} g JOIN {NOTIFICATIONS} n ON n.id = g.digest_id
                WHERE g.state = %s AND n.status = ANY(%s)
                ORDER BY g.id LIMIT %s FOR UPDATE OF g SKIP LOCKED
                """,
                [DigestState.RELEASED, list(FINAL), limit],
            )
            done = cursor.fetchall()
        for group_id, digest_id, status, sent_at, delivered_at, last_error in done:
            members = list(Notification.objects.filter(
                id__in=DigestMember.objects.filter(group_id=group_id).values("notification_id"),
                status=Status.SENDING, claimed_at__isnull=True).values("id"))
            detail = {
                Status.SENT: f"sent in digest {digest_id}", Status.DELIVERED: f"delivered in digest {digest_id}",
            }.get(status, f"its digest {digest_id} is {status}" + (f": {last_error}" if last_error else ""))
            _finish_members(members, allowed=Status.SENDING, status=status, now=now, detail=detail[:500],
                            digest_id=digest_id, sent_at=sent_at, delivered_at=delivered_at,
                            last_error=last_error if status == Status.FAILED else "")
        if done:
            DigestGroup.objects.filter(id__in=[row[0] for row in done]).update(state=DigestState.SETTLED)
    return len(done)


def _finish_members(members: list[dict], *, allowed: str, status: str, now: datetime, detail: str,
                    digest_id=None, sent_at=None, delivered_at=None, last_error: str | None = None) -> None:
    """Members still ``allowed`` take their final status (``failed`` with ``detail`` as the error when no
    digest was made), through ``lifecycle.transition`` (their events and counts)."""
    if not members:
        return
    fields = {"next_attempt_at": None, "provider": PROVIDER, "provider_message_id": str(digest_id) if digest_id else ""}
    if status in (Status.SENT, Status.DELIVERED):
        fields.update(sent_at=sent_at or now, delivered_at=delivered_at)
    if status == Status.FAILED:
        fields["last_error"] = last_error or detail
    lifecycle.transition(Notification.objects.filter(id__in=[m["id"] for m in members]), allowed=[allowed], to=status,
                         detail=detail, now=now, fields=fields, event_provider=True)

"""Reads: what the status API shows of a notification's digest or fallback."""
from __future__ import annotations

from .models import DigestGroup, DigestMember, DigestState, FallbackStep

HELD = "held"


def _digest_state(group: DigestGroup) -> str:
    return HELD if group.state == DigestState.OPEN else group.state


def workflow_of(notification) -> dict | None:
    """``{"digest": ...}`` for a digest member, ``{"digest_of": ...}`` for a digest message,
    ``{"fallback": [...]}`` for an in-app notification with fallback steps; None for any other."""
    out = {}
    member = DigestMember.objects.select_related("group").filter(notification_id=notification.pk).first()
    if member is not None:
        group = member.group
        out["digest"] = {
            "key": group.key, "state": _digest_state(group), "release_at": group.release_at,
            "items": group.items, "digest_notification": str(group.digest_id) if group.digest_id else None,
        }
    if (notification.metadata or {}).get("digest"):
        group = DigestGroup.objects.filter(digest_id=notification.pk).first()
        if group is not None:
            out["digest_of"] = {"key": group.key, "items": [
                str(i) for i in group.members.order_by("notification_id").values_list("notification_id", flat=True)]}
    if notification.channel == "in_app":
        steps = list(FallbackStep.objects.filter(source_id=notification.pk).order_by("position"))
        if steps:
            out["fallback"] = [{
                "channel": s.channel, "after_seconds": s.after_seconds, "unless": s.unless, "state": s.state,
                "due_at": s.due_at if s.state == "pending" else None, "detail": s.detail,
                "notification": str(s.notification_id) if s.notification_id else None,
            } for s in steps]
    return out or None


def digests_open(*, project_id: int, recipient: str | None = None, key: str | None = None):
    """The project's groups still collecting (held), oldest first, with their members."""
    qs = DigestGroup.objects.filter(project_id=project_id, state=DigestState.OPEN).select_related("recipient")
    if recipient:
        qs = qs.filter(recipient__external_id=recipient)
    if key:
        qs = qs.filter(key=key)
    return qs.prefetch_related("members").order_by("release_at", "id")

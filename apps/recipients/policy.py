"""Preference and quiet-hours checks, registered in ``apps.notifications.policy``.

Both checks load every preference of the batch's recipients in one query and
read the time from ``notifier.clock`` (the real time unless a test moved it).
"""
from __future__ import annotations

from notifier import clock
from notifier.preferences import Decision, decide

from apps.notifications.categories import category_get
from apps.notifications.policy import Verdict

from .selectors import preference_maps


def _applies(category_slug: str, recipient) -> bool:
    """Whether preferences can matter at all: a known recipient and a category open to opt-out or quiet hours."""
    category = category_get(category_slug)
    return recipient is not None and category is not None and (category.allow_opt_out or category.quiet_hours_apply)


def _decide(*, channel, category_slug, recipient, preferences, now) -> Decision:
    category = category_get(category_slug)
    return decide(
        channel=channel, category=category_slug, allow_opt_out=category.allow_opt_out,
        quiet_hours_apply=category.quiet_hours_apply, preferences=preferences.get(recipient.pk, {}),
        quiet_hours=recipient.quiet_hours, timezone=recipient.timezone or "UTC", now=now,
    )


def check_at_acceptance(specs, now) -> None:
    """Suppress opted-out specs; hold those that would arrive in quiet hours until they end.

    A spec scheduled for later is judged at its scheduled time.
    """
    now = clock.now()
    specs = [s for s in specs if _applies(s.category, s.recipient)]
    if not specs:
        return
    preferences = preference_maps({s.recipient.pk for s in specs})
    for spec in specs:
        at = spec.scheduled_for if spec.scheduled_for and spec.scheduled_for > now else now
        decision = _decide(channel=spec.channel, category_slug=spec.category, recipient=spec.recipient,
                           preferences=preferences, now=at)
        if decision.suppress:
            spec.status = "suppressed"
            spec.status_detail = decision.detail
        elif decision.hold_until is not None:
            spec.hold_until = decision.hold_until
            spec.status_detail = decision.detail


def check_before_send(notifications, now) -> dict:
    """Verdicts for claimed notifications the recipient's current preferences stop."""
    now = clock.now()
    # recipient_id first: most of a batch has direct addresses, and `n.recipient` is a descriptor call.
    notifications = [n for n in notifications if n.recipient_id is not None and _applies(n.category, n.recipient)]
    verdicts = {}
    if not notifications:
        return verdicts
    preferences = preference_maps({n.recipient_id for n in notifications})
    for n in notifications:
        decision = _decide(channel=n.channel, category_slug=n.category, recipient=n.recipient,
                           preferences=preferences, now=now)
        if decision.suppress:
            verdicts[n.id] = Verdict(status="suppressed", detail=decision.detail)
        elif decision.hold_until is not None:
            verdicts[n.id] = Verdict(status="scheduled", detail=decision.detail, hold_until=decision.hold_until)
    return verdicts

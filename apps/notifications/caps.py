"""Per-recipient frequency caps across channels (an acceptance check, see policy.py).

A category with ``cap_count`` > 0 allows at most ``cap_count`` notifications per
recipient per ``cap_period_seconds``, whatever the channel: a token bucket per
(category, recipient) in Redis (notifier.ratelimit.CapLimiter), refilled evenly
over the period. Over the cap, ``cap_action`` decides: ``suppress`` (status
``suppressed``, detail ``rate_limited: ...``) or ``hold`` (status ``scheduled``,
released when the bucket has a slot for it; each held notification reserves the
next slot).

The recipient is its external id; for direct sends, the address (or the device
tokens); either within the notification's project (projects do not share buckets).
Both are hashed before they become part of a Redis key. A batch costs
one script call. If Redis is unreachable the caps are skipped (logged).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings

from notifier.ratelimit import HELD, REFUSED, CapItem, CapLimiter, client_from_url, hashed

from .categories import category_get
from .models import Status

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _limiter(url: str) -> CapLimiter:
    return CapLimiter(client_from_url(url))


def cap_limiter() -> CapLimiter:
    return _limiter(settings.REDIS_URL)


def cap_subject(spec, project_id: int | None = None) -> str | None:
    """Who a notification is for, for capping, within its project: the recipient's external id, else its
    address. Projects do not share buckets: one project's sends never use up another's slots."""
    owner = f"p{project_id}:" if project_id is not None else ""
    if spec.recipient is not None:
        return f"{owner}r:{spec.recipient.external_id}"
    if spec.to:
        return f"{owner}a:{spec.to.strip().lower()}"
    tokens = (spec.content or {}).get("device_tokens")
    if tokens:
        return f"{owner}d:" + ",".join(sorted(tokens))
    return None


def frequency_caps(specs, now: datetime, *, limiter: CapLimiter | None = None) -> None:
    items: list[CapItem] = []
    capped = []
    default_project = None
    for spec in specs:
        category = category_get(spec.category)
        if category is None or category.cap_count < 1 or category.cap_period_seconds < 1:
            continue
        project_id = spec.project_id
        if project_id is None:  # made without an API key: the insert gives it the default project
            if default_project is None:
                from apps.apikeys.models import default_project_id

                default_project = default_project_id()
            project_id = default_project
        subject = cap_subject(spec, project_id)
        if subject is None:
            continue
        items.append(CapItem(
            bucket=f"{category.slug}:{hashed(subject)}", capacity=category.cap_count,
            period=float(category.cap_period_seconds), mode=category.cap_action,
            max_hold=settings.NOTIFIER_FREQUENCY_CAP_MAX_HOLD,
        ))
        capped.append((spec, category))
    if not items:
        return
    try:
        decisions = (limiter or cap_limiter()).hit_many(items)
    except Exception:  # noqa: BLE001 - caps protect recipients; Redis trouble must not stop sending
        logger.warning("frequency caps unavailable (Redis); %d notifications not capped", len(items), exc_info=True)
        return
    for (spec, category), decision in zip(capped, decisions):
        limit = f"at most {category.cap_count} {category.slug} per {category.cap_period_seconds}s per recipient"
        if decision.code == REFUSED:
            spec.status = Status.SUPPRESSED
            spec.status_detail = f"rate_limited: {limit}"
        elif decision.code == HELD:
            until = now + timedelta(seconds=decision.wait)
            if spec.hold_until is None or until > spec.hold_until:
                spec.hold_until = until
                spec.status_detail = f"rate_limited: held until {until.isoformat()} ({limit})"

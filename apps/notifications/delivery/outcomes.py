"""What a provider's outcomes make of one notification: sent, a retry after a back-off, a wait for an
open circuit, or failed (permanently at once, or with its retries exhausted: a dead letter)."""
from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings

from notifier.channels.base import Message
from notifier.channels.failover import Outcome
from notifier.pii import mask_generic
from notifier.retry import Backoff, should_retry

from ..models import Notification, Status
from ..specs import Result


def backoff() -> Backoff:
    """The retry back-off of the settings."""
    return Backoff(base=settings.NOTIFIER_RETRY_BACKOFF_BASE, cap=settings.NOTIFIER_RETRY_BACKOFF_MAX)


def _describe(messages: list[Message], outcomes: list[Outcome]) -> str:
    """The path of every message; a push fanned out to several devices names each one."""
    if len(messages) == 1 and messages[0].device_id is None:
        return outcomes[0].describe()
    parts = []
    for message, outcome in zip(messages, outcomes):
        label = f"device {message.device_id}" if message.device_id is not None else f"token {mask_generic(message.to)}"
        parts.append(f"{label} ({message.platform or 'token'}): {outcome.describe()}")
    return " | ".join(parts)


def result_from_outcomes(notification: Notification, outcomes: list[Outcome], now: datetime,
                          messages: list[Message] | None = None) -> Result:
    """The result of one notification from the outcomes of its messages (one per target)."""
    if len(outcomes) == 1 and outcomes[0].error is None and (not messages or messages[0].device_id is None):
        # The common case, one message accepted: what the general path below gives, without its lists.
        outcome = outcomes[0]
        return Result(notification, Status.SENT, provider=outcome.provider,
                      provider_message_id=outcome.message_id or "", detail=outcome.describe())
    sent = [o for o in outcomes if o.ok]
    detail = _describe(messages, outcomes) if messages else " | ".join(o.describe() for o in outcomes)
    if sent:
        return Result(notification, Status.SENT, provider=sent[0].provider,
                      provider_message_id=sent[0].message_id or "", detail=detail)
    transient = [o for o in outcomes if o.error and not o.error.permanent]
    failure = (transient or outcomes)[0]
    error_text = str(failure.error)
    if not transient:
        return Result(notification, Status.FAILED, provider=failure.provider, error=error_text, detail=detail)
    if all(o.circuit_wait for o in transient):
        # Every provider's circuit is open: wait until one half-opens, without spending a retry.
        until = max(now, datetime.fromtimestamp(min(o.retry_at for o in transient), tz=dt_timezone.utc))
        return Result(notification, Status.QUEUED, provider=failure.provider, error=error_text,
                      detail=f"waiting for an open circuit until {until.isoformat(timespec='seconds')}: {detail}",
                      next_attempt_at=until, attempted=False)
    transient = [o for o in transient if o.attempted]
    failure = transient[0]
    error_text = str(failure.error)
    attempts_in_budget = notification.attempts + 1 - notification.attempts_at_replay
    if should_retry(attempts_in_budget):
        delay = backoff().delay(attempts_in_budget, retry_after=failure.error.retry_after)
        at = now + timedelta(seconds=delay)
        return Result(notification, Status.QUEUED, provider=failure.provider, error=error_text,
                      detail=f"retry {attempts_in_budget} in {delay:.2f}s after: {detail}", next_attempt_at=at)
    return Result(notification, Status.FAILED, provider=failure.provider, error=error_text,
                  detail=f"retries exhausted: {detail}", dead_letter=True)

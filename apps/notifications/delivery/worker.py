"""The worker side of ``notifier.deliver``: claim a chunk, run the before-send checks, hand it to its
providers in paced calls until its deadline, record the results as they come, put back the rest."""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime
from typing import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifier import metrics
from notifier.channels.base import Message
from notifier.channels.failover import send_with_failover
from notifier.channels.registry import providers_for
from notifier.circuit import breaker
from notifier.interrupts import INTERRUPTS
from notifier.pacing import Pace

from .. import lifecycle, policy, store
from ..models import Notification, Status
from ..specs import Result
from . import messages as targeting
from . import results as results_module
from .outcomes import result_from_outcomes

logger = logging.getLogger(__name__)


def deliver_chunk(ids: Iterable[str], *, deadline: float | None = None) -> dict[str, int]:
    """Deliver the notifications among ``ids`` that are still waiting. Returns counts by status.

    ``deadline`` (``time.monotonic()`` seconds; by default ``chunk_deadline()`` from now): after it,
    what has not been handed to a provider is put back and republished in smaller chunks (``_send``).
    """
    started = time.monotonic()
    if deadline is None:
        deadline = started + chunk_deadline()
    now = timezone.now()
    rows = lifecycle.claimed(store.claim(ids, now))
    if not rows:
        return {}
    targeting.attach_recipients(rows)
    devices = targeting.load_devices(rows)

    results: list[Result] = []
    verdicts = policy.before_send([n for n in rows if not (n.expires_at and n.expires_at <= now)], now)
    sendable: dict[str, list[tuple[Notification, list[Message]]]] = defaultdict(list)
    allow_unsubscribe: dict[str, bool] = {}  # by category, looked up once per chunk
    for n in rows:
        if n.expires_at and n.expires_at <= now:
            results.append(Result(n, Status.EXPIRED, detail="expired before sending", attempted=False))
            continue
        verdict = verdicts.get(n.id) if verdicts else None
        if verdict is not None:
            results.append(Result(n, verdict.status, detail=verdict.detail, attempted=False,
                                  next_attempt_at=verdict.hold_until))
            continue
        targets = targeting.targets(n, devices)
        if not targets:
            results.append(Result(n, Status.FAILED, error="no address to send to", detail="no address to send to",
                                  attempted=False))
            continue
        opt_out = allow_unsubscribe.get(n.category)
        if opt_out is None:
            opt_out = allow_unsubscribe[n.category] = targeting.allow_unsubscribe(n.category)
        sendable[n.channel].append((n, [targeting.message(n, address, platform, device_id, allow_unsubscribe=opt_out)
                                        for address, platform, device_id in targets]))

    return _send(rows, sendable, results, now, deadline, allowed=deadline - started)


# The process's pace of each channel (seconds per message), which sizes provider calls.
pace = Pace()


def chunk_deadline(*, soft: float | None = None, hard: float | None = None) -> float:
    """Seconds a worker may spend handing one chunk's notifications to providers:
    ``NOTIFIER_CHUNK_DEADLINE``, and at most half of the task's soft and hard time limits (those its
    message carries, else the settings') and of ``NOTIFIER_CLAIM_TIMEOUT`` (the sweep must never take
    back rows whose worker is still at work)."""
    if soft is None and hard is None:
        soft = settings.CELERY_TASK_SOFT_TIME_LIMIT
        hard = settings.CELERY_TASK_TIME_LIMIT
    limits = [settings.NOTIFIER_CHUNK_DEADLINE]
    for limit in (soft, hard, settings.NOTIFIER_CLAIM_TIMEOUT):
        if limit:
            limits.append(limit / 2)
    return min(limits)


def _send(rows: list[Notification], sendable: dict[str, list[tuple[Notification, list[Message]]]],
          results: list[Result], claimed_at: datetime, deadline: float, *, allowed: float) -> dict[str, int]:
    """Hand the claimed notifications to their providers in calls paced to the deadline, recording the
    results as they come; at the deadline, put back what was not handed over and republish it split.

    Each provider call is sized (``notifier.pacing``) to last about a tenth of the chunk's time
    (``allowed`` seconds, from the task's start to ``deadline``).
    Results are written (one ``record_results`` statement) whenever that long has passed since the
    last write, and at the end: a provider that answers at once gets the whole chunk in one call and
    one write, as before; a slow relay gets its results written call by call, so a worker killed
    mid-chunk loses at most what its last call sent. Once the deadline has passed, the notifications
    not yet handed to a provider go back to ``queued`` and are republished in two chunks (at least
    one call is made per chunk, so every chunk makes progress). A Celery soft time limit
    (``SoftTimeLimitExceeded``) is handled alike and raised again; the notifications of the call it
    interrupted stay ``sending``: the sweep puts them back (and counts it, see ``maintenance.sweep``).
    """
    budget = allowed / 10
    counts: dict[str, int] = defaultdict(int)
    sent_items: list = []
    written_at = time.monotonic()
    # What is left: (channel, items) pairs; of the first, the items from `handed` on were never given
    # to a provider (`handed` moves before each call: what a provider may have had is never put back).
    queue = list(sendable.items())
    handed = 0

    def write() -> None:
        nonlocal results, sent_items, written_at
        batch, after_send, results, sent_items = results, sent_items, [], []
        written_at = time.monotonic()
        policy.after_send(after_send)
        results_module.record_results(batch)
        for r in batch:
            counts[r.status] += 1

    def not_handed_over() -> list[Notification]:
        rest = [n for n, _ in queue[0][1][handed:]] if queue else []
        return rest + [n for _, items in queue[1:] for n, _ in items]

    try:
        made_a_call = False
        while queue:
            channel, items = queue[0]
            if handed >= len(items):
                queue.pop(0)
                handed = 0
                continue
            clock = time.monotonic()
            if made_a_call and clock >= deadline:
                break
            providers = providers_for(channel)
            size = pace.size(channel, len(items) - handed, min(budget, deadline - clock),
                             floor=providers[0].parallelism)
            batch = items[handed:handed + size]
            handed += size
            flat = [m for _, messages in batch for m in messages]
            outcomes = send_with_failover(providers, flat, breaker=breaker())
            pace.observe(channel, len(batch), time.monotonic() - clock)
            made_a_call = True
            metrics.attempts_made(channel, ((o.path, o.ok, bool(o.error and o.error.permanent)) for o in outcomes))
            sent_at = timezone.now()
            if len(flat) == len(batch):  # one message each (no push fan-out): pair them directly
                for (n, messages), outcome in zip(batch, outcomes):
                    results.append(result_from_outcomes(n, [outcome], sent_at, messages))
                    sent_items.append((n, messages[0], outcome))
            else:
                offset = 0
                for n, messages in batch:
                    mine = outcomes[offset:offset + len(messages)]
                    offset += len(messages)
                    results.append(result_from_outcomes(n, mine, sent_at, messages))
                    sent_items.extend((n, m, o) for m, o in zip(messages, mine))
            if time.monotonic() - written_at >= budget and (handed < len(items) or len(queue) > 1):
                write()
    except INTERRUPTS:
        # Celery's soft time limit: keep what is known, give back what was never handed over.
        rest = not_handed_over()
        try:
            write()
            with transaction.atomic():
                results_module.put_back(rest, claimed_at, "put back: the task's soft time limit struck before it was sent")
        except Exception:  # noqa: BLE001 - the rows stay `sending`; the sweep puts them back
            logger.exception("could not record a timed-out chunk; the sweep will put its rows back")
        raise
    write()
    rest = not_handed_over()
    if rest:
        with transaction.atomic():  # the rows and their events, then (on commit) the publish
            counts[Status.QUEUED] += results_module.put_back(
                rest, claimed_at, f"put back: the chunk's deadline ({allowed:.3g}s) passed before it was sent; "
                                  f"republished in smaller chunks")
        logger.warning("chunk deadline: %d of %d notifications put back and republished in two chunks",
                       len(rest), len(rows))
    return dict(counts)

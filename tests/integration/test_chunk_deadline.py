"""Chunks that do not fit the worker's time limits (issue 22), with real workers, RabbitMQ and a slow relay.

Before: a 1,000-email chunk on a relay taking 0.5 s per message ran into the soft time limit (which the
SMTP provider swallowed), was killed at the hard limit with nothing recorded, and was put back whole by
the sweep, to be sent again from the start every few minutes, for ever.
"""
from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
from django.db.models import Count
from rest_framework import status

from apps.notifications.intake.create import notifications_create
from apps.notifications.models import Notification, NotificationEvent
from apps.notifications.outbox import process_dead_letters
from apps.notifications.specs import NotificationSpec
from tests.stack import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _statuses(ids) -> dict[str, int]:
    return dict(Notification.objects.filter(id__in=ids).values_list("status").annotate(n=Count("id")))


def _sent(ids) -> set[str]:
    return {str(i) for i in Notification.objects.filter(id__in=ids, status="sent").values_list("id", flat=True)}


def _put_back_by_deadline(ids) -> int:
    return NotificationEvent.objects.filter(notification_id__in=ids, status="queued",
                                            detail__contains="deadline").count()


@pytest.fixture
def time_limits(monkeypatch):
    """Give delivery tasks these soft and hard time limits: Celery stamps the publisher's limits on each
    message (a prefork worker enforces those), so this process, which publishes through the API, gets
    them as well as the workers (``env``)."""
    from apps.notifications.tasks import deliver

    def apply(soft: int, hard: int) -> dict[str, str]:
        task = deliver._get_current_object()
        monkeypatch.setattr(task, "soft_time_limit", soft)
        monkeypatch.setattr(task, "time_limit", hard)
        monkeypatch.setattr(task, "_exec_options", None)  # Celery's cache of them
        return {"CELERY_TASK_SOFT_TIME_LIMIT": str(soft), "CELERY_TASK_TIME_LIMIT": str(hard)}
    return apply


# prefork: Celery's soft/hard limits of 10/12 s, the chunk deadline of 4 s well inside them;
# threads: no time limit at all, the chunk deadline (4 s) is the only one.
POOLS = {"prefork": (2, 16), "threads": (4, 32)}  # concurrency, SMTP sessions a process


@pytest.mark.parametrize("pool", sorted(POOLS))
def test_a_1000_email_batch_through_a_relay_that_takes_half_a_second_per_message_arrives_exactly_once(
        pool, api, stack, smtp_sink, time_limits, capsys):
    concurrency, sessions = POOLS[pool]
    limits = time_limits(10, 12) if pool == "prefork" else {}
    smtp_sink.delay = 0.5  # every DATA is answered after half a second: 500 s for the chunk on one session
    env = {"NOTIFIER_CHUNK_DEADLINE": "4", "NOTIFIER_SMTP_CONNECTIONS": str(sessions), **limits}
    stack.worker(pool=pool, concurrency=concurrency, env=env)
    items = [{"channel": "email", "to": f"user{i}@example.com", "subject": f"Slow {i}", "body": "b"}
             for i in range(1000)]
    started = time.monotonic()

    response = api.post("/api/v1/notifications/batch/", {"notifications": items}, format="json")

    assert response.status_code == status.HTTP_202_ACCEPTED
    ids = [r["id"] for r in response.json()["results"]]
    wait_for(lambda: _statuses(ids) == {"sent": 1000}, timeout=180, interval=0.5, message="1000 sent")
    took = time.monotonic() - started
    received = Counter(m["X-Notifier-Id"] for m in smtp_sink.messages)
    assert len(smtp_sink.messages) == 1000 and set(received) == set(ids)  # exactly 1,000: none twice
    assert _put_back_by_deadline(ids) > 0, "the chunk did not fit its deadline and was split"
    assert not Notification.objects.filter(id__in=ids, claim_timeouts__gt=0).exists()  # no claim ever lost
    with capsys.disabled():
        print(f"\n[slow relay, {pool}] 1000 emails at 0.5 s per DATA over {sessions} sessions a process: "
              f"all sent in {took:.1f} s, {_put_back_by_deadline(ids)} put back at a deadline, "
              f"peak {smtp_sink.peak_sessions} sessions")


def _emails(count: int) -> list[str]:
    specs = [NotificationSpec(channel="email", category="transactional", priority="normal", to=f"k{i}@example.com",
                              content={"subject": f"k{i}", "body": "b"}) for i in range(count)]
    return [str(n.id) for n in notifications_create(specs=specs)]


def test_a_worker_killed_mid_chunk_never_resends_what_it_had_recorded_sent(stack, smtp_sink, capsys):
    smtp_sink.delay = 0.1
    common = {"NOTIFIER_SMTP_CONNECTIONS": "2"}
    ids = _emails(500)  # one chunk: 25 s on two sessions
    victim = stack.worker(concurrency=1, env={**common, "NOTIFIER_CHUNK_DEADLINE": "20"})
    # Results are recorded call by call (about every 2 s here), while the chunk is still being sent.
    wait_for(lambda: len(_sent(ids)) >= 100, timeout=60, interval=0.2, message="sends recorded mid-chunk")

    victim.kill(signal.SIGKILL)
    victim.popen.wait(10)
    recorded = _sent(ids)
    assert len(recorded) < len(ids), "the kill should land in the middle of the chunk"

    recovery = {**common, "NOTIFIER_CLAIM_TIMEOUT": "6", "NOTIFIER_SWEEP_INTERVAL": "1"}
    stack.worker(concurrency=2, env=recovery)
    stack.beat(env=recovery)
    wait_for(lambda: _statuses(ids) == {"sent": 500}, timeout=120, interval=0.5, message="all sent after the kill")

    received = Counter(m["X-Notifier-Id"] for m in smtp_sink.messages)
    assert set(received) == set(ids)
    assert all(received[i] == 1 for i in recorded), "a notification recorded sent was sent again"
    swept = Notification.objects.filter(id__in=ids, claim_timeouts=1).count()
    assert swept == len(ids) - len(recorded)  # every other row came back through the sweep, counted once
    duplicates = sum(n - 1 for n in received.values())
    with capsys.disabled():
        print(f"\n[sigkill mid-chunk] {len(recorded)} of 500 recorded sent at the kill, none resent; "
              f"{duplicates} sent twice (the call in flight when the worker died)")


def _dead_letters() -> list[dict]:
    letters = []
    process_dead_letters(limit=None, select=lambda letter: True, handle=letters.append, consume=False)
    return letters


def test_a_notification_whose_worker_never_finishes_ends_failed_in_the_dead_letter_queue(
        stack, smtp_sink, time_limits):
    """The relay never answers DATA: each time, the soft time limit stops the worker mid-send (nothing
    is known of that mail), the claim times out, and the sweep counts it; the third time it fails."""
    smtp_sink.delay = 30
    env = {**time_limits(2, 3), "EMAIL_TIMEOUT": "60", "NOTIFIER_CLAIM_TIMEOUT": "4", "NOTIFIER_SWEEP_INTERVAL": "1"}
    stack.worker(concurrency=1, env=env)
    stack.beat(env=env)
    [notification_id] = _emails(1)

    row = wait_for(lambda: (n := Notification.objects.get(pk=notification_id)).status == "failed" and n,
                   timeout=90, interval=0.5, message="failed after three claim timeouts")

    assert row.last_error == "delivery never completed (claimed 3 times)"
    assert (row.claim_timeouts, row.attempts) == (3, 0)
    statuses = list(NotificationEvent.objects.filter(notification_id=notification_id).values_list("status", flat=True))
    assert statuses == ["queued", "sending", "queued", "sending", "queued", "sending", "failed"]
    [letter] = wait_for(_dead_letters, timeout=10, message="its dead letter")
    assert (letter["id"], letter["attempts"], letter["last_error"]) == (
        notification_id, 0, "delivery never completed (claimed 3 times)")

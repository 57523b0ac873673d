"""A worker paces a chunk to its deadline: results are recorded call by call, what did not fit is put
back and republished in smaller chunks, and a soft time limit is never swallowed (issue 22)."""
from __future__ import annotations

import json
import signal
import threading

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.notifications import outbox
from apps.notifications.delivery import worker
from apps.notifications.intake.create import notifications_create
from apps.notifications.models import Notification, NotificationEvent
from apps.notifications.specs import NotificationSpec

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_pace():
    worker.pace.reset()
    yield
    worker.pace.reset()


@pytest.fixture
def relay(settings, smtp_sink, purge_queues):
    """The SMTP sink as the relay, one session per worker process (calls are sent in order)."""
    settings.EMAIL_PORT = smtp_sink.port
    settings.NOTIFIER_SMTP_CONNECTIONS = 1
    return smtp_sink


def _emails(count: int) -> list[str]:
    specs = [NotificationSpec(channel="email", category="transactional", priority="normal", to=f"user{i}@example.com",
                              content={"subject": f"s{i}", "body": "b"})
             for i in range(count)]
    ids = [str(n.id) for n in notifications_create(specs=specs)]
    _published("notifications.normal")  # the messages of their creation: this test plays the worker
    return ids


def _published(queue: str) -> list[list[str]]:
    """The id lists of the delivery messages waiting in ``queue`` (taken off it)."""
    from config.celery_app import app

    chunks = []
    with app.connection_for_write() as conn:
        channel = conn.channel()
        try:
            while (message := channel.basic_get(queue, no_ack=True)) is not None:
                chunks.append(json.loads(message.body)[0][0])
        finally:
            channel.close()
    return chunks


def _statuses(ids) -> dict[str, str]:
    return {str(i): s for i, s in Notification.objects.filter(id__in=ids).values_list("id", "status")}


def test_a_chunk_that_does_not_fit_its_deadline_records_what_it_sent_and_republishes_the_rest_in_halves(
        relay, settings):
    settings.NOTIFIER_CHUNK_DEADLINE = 0.3
    relay.delay = 0.05  # the first call (10 mails) takes at least 0.5 s: past the deadline
    ids = _emails(30)

    counts = worker.deliver_chunk(ids)

    assert counts == {"sent": 10, "queued": 20}
    statuses = _statuses(ids)
    sent = {i for i, s in statuses.items() if s == "sent"}
    assert sent == {m["X-Notifier-Id"] for m in relay.messages} and len(relay.messages) == 10
    rest = {i for i, s in statuses.items() if s == "queued"}
    assert len(rest) == 20
    halves = _published("notifications.normal")
    assert sorted(map(len, halves)) == [10, 10] and {i for h in halves for i in h} == rest
    events = list(NotificationEvent.objects.filter(notification_id=next(iter(rest))).values_list("status", "detail"))
    assert [s for s, _ in events] == ["queued", "sending", "queued"]
    assert "deadline" in events[-1][1]
    # The next workers deliver the halves (splitting them again while they do not fit); nothing twice.
    pending, rounds = halves, 0
    while pending and rounds < 10:
        for chunk in pending:
            worker.deliver_chunk(chunk)
        pending, rounds = _published("notifications.normal"), rounds + 1
    assert set(_statuses(ids).values()) == {"sent"}
    assert sorted(m["X-Notifier-Id"] for m in relay.messages) == sorted(ids)


def test_results_from_a_slow_relay_are_recorded_call_by_call(relay, settings):
    settings.NOTIFIER_CHUNK_DEADLINE = 5.0  # calls of about 0.5 s
    relay.delay = 0.1
    worker.pace.observe("email", 1, 0.1)
    ids = _emails(12)

    assert worker.deliver_chunk(ids) == {"sent": 12}

    writes = Notification.objects.filter(id__in=ids).values("sent_at").distinct().count()
    assert writes >= 2  # not one write at the end of the chunk
    assert len(relay.messages) == 12


def test_a_provider_that_answers_at_once_gets_one_result_write_per_chunk(settings, purge_queues):
    settings.NOTIFIER_PROVIDERS = {**settings.NOTIFIER_PROVIDERS, "email": ["null"]}
    ids = _emails(200)

    with CaptureQueriesContext(connection) as queries:
        assert worker.deliver_chunk(ids) == {"sent": 200}

    result_writes = [q for q in queries.captured_queries if "unnest(" in q["sql"]]
    assert len(result_writes) == 1


def test_a_soft_time_limit_mid_chunk_keeps_what_was_sent_and_puts_back_what_was_never_handed_over(relay, settings):
    settings.NOTIFIER_CHUNK_DEADLINE = 9.0  # calls of about 0.9 s: three mails, then more
    worker.pace.observe("email", 1, 0.3)
    relay.delay = 0.05
    ids = _emails(20)
    main = threading.get_ident()
    once = threading.Lock()  # one signal only: a later one, after the handler is restored, would kill pytest

    def interrupt(message):
        if len(relay.messages) >= 4 and once.acquire(blocking=False):
            signal.pthread_kill(main, signal.SIGUSR1)

    relay.on_message = interrupt

    def soft_limit(signum, frame):  # what Celery's prefork pool does at CELERY_TASK_SOFT_TIME_LIMIT
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGUSR1, soft_limit)
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            worker.deliver_chunk(ids)
    finally:
        signal.signal(signal.SIGUSR1, previous)

    statuses = _statuses(ids)
    arrived = [m["X-Notifier-Id"] for m in relay.messages]
    sent = {i for i, s in statuses.items() if s == "sent"}
    in_flight = {i for i, s in statuses.items() if s == "sending"}
    queued = {i for i, s in statuses.items() if s == "queued"}
    assert sent == set(arrived[:3])  # the first call's results, recorded
    assert arrived[3] in in_flight  # the interrupted call: not known, left to the sweep
    assert sent | in_flight | queued == set(ids) and len(in_flight) < 10
    assert {i for h in _published("notifications.normal") for i in h} == queued  # given back at once


def test_the_chunk_deadline_is_at_most_half_of_each_time_limit(settings):
    settings.NOTIFIER_CHUNK_DEADLINE = 60
    settings.CELERY_TASK_SOFT_TIME_LIMIT, settings.CELERY_TASK_TIME_LIMIT = 270, 300
    settings.NOTIFIER_CLAIM_TIMEOUT = 330
    assert worker.chunk_deadline() == 60
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 40
    assert worker.chunk_deadline() == 20
    assert worker.chunk_deadline(soft=10, hard=12) == 5  # the limits a task's message carries win
    settings.CELERY_TASK_SOFT_TIME_LIMIT = settings.CELERY_TASK_TIME_LIMIT = None
    settings.NOTIFIER_CLAIM_TIMEOUT = 30
    assert worker.chunk_deadline() == 15


def test_a_soft_time_limit_while_republishing_marks_the_rows_due_and_is_raised(purge_queues, monkeypatch):
    """The dispatcher then publishes them within a second, instead of the sweep after NOTIFIER_REQUEUE_AFTER."""

    ids = _emails(4)

    def interrupted(items, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(outbox, "publish_deliveries", interrupted)
    with pytest.raises(SoftTimeLimitExceeded):
        outbox.publish_or_mark_due([(i, "normal") for i in ids], chunk_size=2)
    assert Notification.objects.filter(id__in=ids, next_attempt_at__isnull=False).count() == 4

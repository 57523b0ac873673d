"""Scheduling with real beat (django-celery-beat's DatabaseScheduler) and real workers on RabbitMQ.

Scheduled sends, cancel, reschedule, expiry, two dispatchers racing, the outbox
sweep and recurring sends, all delivered to a real SMTP sink.
"""
import time
from collections import Counter
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework import status

from apps.notifications.intake.create import notifications_create
from apps.notifications.models import Notification, NotificationEvent, Status
from apps.notifications.specs import NotificationSpec
from tests.stack import ALL_QUEUES, sent_by_beat, wait_for

pytestmark = pytest.mark.integration

DB_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


def _post_email(api, to="alice@example.com", **extra):
    body = {"to": to, "subject": "Scheduled", "body": "It is time.", **extra}
    response = api.post("/api/v1/notifications/email/", body, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    return response.json()


def _row(notification_id) -> Notification:
    return Notification.objects.get(pk=notification_id)


def _status(notification_id) -> str:
    return _row(notification_id).status


def _events(notification_id) -> list[NotificationEvent]:
    return list(NotificationEvent.objects.filter(notification_id=notification_id).order_by("at", "id"))


def _mails_for(smtp_sink, notification_id) -> int:
    return len(smtp_sink.by_notification().get(str(notification_id), []))


def _queue_depth(name: str) -> int:
    from config.celery_app import app

    with app.connection_for_write() as conn:
        channel = conn.channel()
        try:
            return channel.queue_declare(name, passive=True).message_count
        finally:
            channel.close()


def _nothing_sent_until(moment, smtp_sink, notification_id):
    """Poll until ``moment`` (minus a little), asserting the notification has not left."""
    while timezone.now() < moment - timedelta(milliseconds=200):
        assert _mails_for(smtp_sink, notification_id) == 0, "sent before its time"
        assert _status(notification_id) in (Status.SCHEDULED,), _status(notification_id)
        time.sleep(0.1)


def _assert_sent_once_not_before(smtp_sink, notification_id, not_before):
    row = _row(notification_id)
    assert row.status == Status.SENT
    assert row.sent_at >= not_before
    claimed = [e for e in _events(notification_id) if e.status == Status.SENDING]
    assert claimed and all(e.at >= not_before for e in claimed)  # the worker took it only once due
    assert _mails_for(smtp_sink, notification_id) == 1


# --- scheduled sends ---------------------------------------------------------------------------------

def test_a_notification_scheduled_5_s_ahead_is_scheduled_then_sent_at_its_time_never_before(api, stack, smtp_sink):
    stack.worker()
    stack.beat(scheduler=DB_SCHEDULER)
    scheduled_for = timezone.now() + timedelta(seconds=5)

    accepted = _post_email(api, scheduled_for=scheduled_for.isoformat())

    assert accepted["status"] == "scheduled"
    _nothing_sent_until(scheduled_for, smtp_sink, accepted["id"])
    wait_for(lambda: _status(accepted["id"]) == Status.SENT, timeout=60, message="scheduled notification sent")
    _assert_sent_once_not_before(smtp_sink, accepted["id"], scheduled_for)
    assert _row(accepted["id"]).sent_at - scheduled_for < timedelta(seconds=30)
    assert [e.status for e in _events(accepted["id"])] == ["scheduled", "queued", "sending", "sent"]
    # beat ran from the database schedule, where it installed the settings' entries
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.filter(name="notifier-dispatch-due", task="notifier.dispatch_due").exists()


def test_a_cancelled_notification_never_leaves(api, stack, smtp_sink):
    # One waiting for its time, one already published to RabbitMQ (no worker yet): both cancelled.
    due = timezone.now() + timedelta(seconds=2)
    scheduled = _post_email(api, to="scheduled@example.com", scheduled_for=due.isoformat())["id"]
    queued = _post_email(api, to="queued@example.com")["id"]
    control = _post_email(api, to="control@example.com", scheduled_for=due.isoformat())["id"]
    wait_for(lambda: _queue_depth(settings.PRIORITY_QUEUES["normal"]) == 1, message="queued message published")
    for notification_id in (scheduled, queued):
        response = api.post(f"/api/v1/notifications/{notification_id}/cancel/")
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "cancelled"

    stack.worker()
    stack.beat(scheduler=DB_SCHEDULER)
    wait_for(lambda: _status(control) == Status.SENT, timeout=60, message="control sent")
    wait_for(lambda: _queue_depth(settings.PRIORITY_QUEUES["normal"]) == 0, message="queued message consumed")
    time.sleep(2)  # a few more dispatcher runs

    for notification_id in (scheduled, queued):
        assert _status(notification_id) == Status.CANCELLED
        assert _mails_for(smtp_sink, notification_id) == 0
        assert [e.status for e in _events(notification_id)][-1] == "cancelled"
        assert Status.SENDING not in [e.status for e in _events(notification_id)]
    assert {m["To"] for m in smtp_sink.messages} == {"control@example.com"}


def test_a_rescheduled_notification_goes_at_its_new_time(api, stack, smtp_sink):
    worker = stack.worker(wait=False)  # starts while the two are posted and moved (nothing is due before 2 s)
    stack.beat(scheduler=DB_SCHEDULER)
    later = _post_email(api, to="later@example.com",
                        scheduled_for=(timezone.now() + timedelta(seconds=2)).isoformat())["id"]
    sooner = _post_email(api, to="sooner@example.com",
                         scheduled_for=(timezone.now() + timedelta(hours=1)).isoformat())["id"]

    new_later = timezone.now() + timedelta(seconds=6)
    new_sooner = timezone.now() + timedelta(seconds=3)
    for notification_id, when in ((later, new_later), (sooner, new_sooner)):
        response = api.patch(f"/api/v1/notifications/{notification_id}/", {"scheduled_for": when.isoformat()},
                             format="json")
        assert response.status_code == 200, response.content
    stack.wait_ready(worker)

    wait_for(lambda: _status(sooner) == Status.SENT, timeout=60, message="moved-up notification sent")
    _assert_sent_once_not_before(smtp_sink, sooner, new_sooner)
    _nothing_sent_until(new_later, smtp_sink, later)  # its old time (2 s) passed long ago
    wait_for(lambda: _status(later) == Status.SENT, timeout=60, message="postponed notification sent")
    _assert_sent_once_not_before(smtp_sink, later, new_later)
    assert [e.status for e in _events(later)] == ["scheduled", "scheduled", "queued", "sending", "sent"]


# --- two dispatchers -------------------------------------------------------------------------------------

DISPATCH_LOOP = """
import time
from apps.notifications.maintenance import dispatch_due
end = time.monotonic() + {seconds}
dispatch_due(limit={limit})
print("looping", flush=True)
while time.monotonic() < end:
    dispatch_due(limit={limit})
    time.sleep(0.01)
"""


@pytest.mark.slow
def test_two_beats_and_two_dispatcher_loops_never_send_a_notification_twice(stack, smtp_sink):
    """500 due notifications, released by two beats (their dispatch tasks run in 4 worker
    processes) and two more dispatcher loops, all racing in small batches: each mail exactly once."""
    small_batches = {"NOTIFIER_DISPATCH_LIMIT": "7"}
    # Every process starts at once (the rows are a day ahead until the update below, so none is released early).
    workers = [stack.worker(concurrency=2, env=small_batches, wait=False) for _ in range(2)]
    stack.beat(scheduler=DB_SCHEDULER, env=small_batches)
    stack.beat(scheduler=DB_SCHEDULER, env=small_batches)
    loops = [stack.python(DISPATCH_LOOP.format(seconds=90, limit=5), f"dispatcher-{n}") for n in "ab"]
    far = timezone.now() + timedelta(days=1)
    priorities = ["high", "normal", "low"]
    rows = notifications_create(specs=[
        NotificationSpec(channel="email", category="transactional", priority=priorities[i % 3],
                         content={"subject": f"n{i}", "body": "race"}, to=f"user{i}@example.com", scheduled_for=far)
        for i in range(500)
    ])
    ids = {str(r.id) for r in rows}
    stack.wait_ready_all(workers)
    wait_for(lambda: all("looping" in loop.output() for loop in loops), timeout=60, message="both loops running")
    Notification.objects.filter(status=Status.SCHEDULED).update(next_attempt_at=timezone.now())

    wait_for(lambda: Notification.objects.filter(status=Status.SENT).count() == 500, timeout=120,
             interval=0.5, message="500 sent")
    time.sleep(2)  # any duplicate still in flight would arrive now
    for loop in loops:
        assert loop.alive(), loop.output()

    per_id = Counter({k: len(v) for k, v in smtp_sink.by_notification().items()})
    assert set(per_id) == ids
    assert set(per_id.values()) == {1}, [k for k, n in per_id.items() if n > 1][:10]
    assert len(smtp_sink.messages) == 500
    released = Counter(NotificationEvent.objects.filter(status=Status.QUEUED, detail="released by the dispatcher")
                       .values_list("notification_id", flat=True))
    assert len(released) == 500 and set(released.values()) == {1}  # each row released exactly once
    assert Counter(NotificationEvent.objects.filter(status=Status.SENDING)
                   .values_list("notification_id", flat=True)).most_common(1)[0][1] == 1


# --- expiry ---------------------------------------------------------------------------------------------

def test_a_scheduled_notification_past_its_expiry_becomes_expired_and_is_not_sent(api, stack, smtp_sink):
    now = timezone.now()
    expiring = _post_email(api, scheduled_for=(now + timedelta(seconds=1)).isoformat(),
                           expires_at=(now + timedelta(seconds=2)).isoformat())["id"]
    control = _post_email(api, to="control@example.com")["id"]
    time.sleep(2.5)  # dispatcher down until it expired

    stack.worker()
    stack.beat(scheduler=DB_SCHEDULER)

    wait_for(lambda: _status(expiring) == Status.EXPIRED, timeout=60, message="expired")
    wait_for(lambda: _status(control) == Status.SENT, timeout=60, message="control sent")
    assert _mails_for(smtp_sink, expiring) == 0
    assert [e.status for e in _events(expiring)] == ["scheduled", "expired"]


def test_the_dispatcher_expires_a_notification_whose_message_waits_in_a_rabbitmq_backlog(api, stack, smtp_sink):
    """No worker consumes its queue: the dispatcher (run by the maintenance worker) expires it."""
    backlog = _post_email(api, priority="low", ttl_seconds=2)["id"]
    wait_for(lambda: _queue_depth(settings.PRIORITY_QUEUES["low"]) == 1, message="message in the low queue")
    stack.worker(queues=settings.MAINTENANCE_QUEUE)
    stack.beat(scheduler=DB_SCHEDULER)

    wait_for(lambda: _status(backlog) == Status.EXPIRED, timeout=60, message="expired by the dispatcher")
    assert [e.status for e in _events(backlog)] == ["queued", "expired"]
    assert _queue_depth(settings.PRIORITY_QUEUES["low"]) == 1  # its message is still waiting

    stack.worker(queues=settings.PRIORITY_QUEUES["low"])
    wait_for(lambda: _queue_depth(settings.PRIORITY_QUEUES["low"]) == 0, message="backlog consumed")
    time.sleep(1)
    assert _status(backlog) == Status.EXPIRED
    assert _mails_for(smtp_sink, backlog) == 0


def test_the_worker_expires_a_notification_it_claims_after_its_expiry(api, stack, smtp_sink):
    """No dispatcher at all: the worker checks expiry right before sending."""
    stale = _post_email(api, ttl_seconds=1)["id"]
    wait_for(lambda: _queue_depth(settings.PRIORITY_QUEUES["normal"]) == 1, message="message published")
    time.sleep(1.5)
    fresh = _post_email(api, to="fresh@example.com", ttl_seconds=600)["id"]

    stack.worker()

    wait_for(lambda: _status(fresh) == Status.SENT, timeout=60, message="fresh sent")
    wait_for(lambda: _status(stale) == Status.EXPIRED, timeout=60, message="stale expired by the worker")
    assert _mails_for(smtp_sink, stale) == 0
    assert [e.status for e in _events(stale)] == ["queued", "sending", "expired"]


# --- the outbox sweep -------------------------------------------------------------------------------------

SWEEP_FAST = {"NOTIFIER_REQUEUE_AFTER": "2", "NOTIFIER_SWEEP_INTERVAL": "1", "NOTIFIER_CLAIM_TIMEOUT": "2"}


@pytest.mark.slow
def test_a_notification_whose_publish_was_dropped_is_sent_by_the_sweep(api, stack, smtp_sink):
    with mock.patch("apps.notifications.outbox.publish") as dropped:
        lost = _post_email(api, to="lost@example.com")["id"]
    assert dropped.called  # the row committed, its message never published
    assert _status(lost) == Status.QUEUED
    assert _queue_depth(settings.PRIORITY_QUEUES["normal"]) == 0

    stack.worker(env=SWEEP_FAST)
    stack.beat(scheduler=DB_SCHEDULER, env=SWEEP_FAST)

    wait_for(lambda: _status(lost) == Status.SENT, timeout=60, message="lost notification sent by the sweep")
    assert _mails_for(smtp_sink, lost) == 1
    details = [e.detail for e in _events(lost) if e.status == Status.QUEUED]
    assert any("republished" in d for d in details), details


@pytest.mark.slow
def test_a_notification_left_sending_by_a_dead_worker_is_put_back_and_sent(api, stack, smtp_sink):
    with mock.patch("apps.notifications.outbox.publish"):
        stuck = _post_email(api, to="stuck@example.com")["id"]
    long_ago = timezone.now() - timedelta(seconds=30)
    Notification.objects.filter(pk=stuck).update(status=Status.SENDING, claimed_at=long_ago)

    stack.worker(env=SWEEP_FAST)
    stack.beat(scheduler=DB_SCHEDULER, env=SWEEP_FAST)

    wait_for(lambda: _status(stuck) == Status.SENT, timeout=60, message="stuck notification sent")
    assert _mails_for(smtp_sink, stuck) == 1
    assert any("did not finish" in e.detail for e in _events(stuck))


# --- recurring sends -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_recurring_send_created_through_the_api_fires_at_its_interval_until_deleted(api, stack, smtp_sink):
    worker = stack.worker(queues=ALL_QUEUES, wait=False)  # worker and beat start together
    beat = stack.beat(scheduler=DB_SCHEDULER, loglevel="INFO")  # logs every task it sends
    stack.wait_ready(worker)
    # beat is running (it has sent a task) before the schedule exists: it must pick it up without a restart
    wait_for(lambda: sent_by_beat(beat), timeout=60, message="beat running")

    response = api.post("/api/v1/schedules/", {
        "name": "every-2s", "interval_seconds": 2, "channel": "email", "to": ["digest@example.com"],
        "subject": "Digest", "body": "Your digest.", "group_key": "digest",
    }, format="json")
    assert response.status_code == 201, response.content
    schedule_id = response.json()["id"]

    def digests():
        return [m for m in smtp_sink.messages if m["To"] == "digest@example.com"]

    wait_for(lambda: len(digests()) >= 3, timeout=60, interval=0.2, message="three digests")
    sent = Notification.objects.filter(group_key="digest", status=Status.SENT).order_by("created_at")
    created = [n.created_at for n in sent]
    gaps = [(b - a).total_seconds() for a, b in zip(created, created[1:])]
    assert all(g >= 1.0 for g in gaps), gaps  # one per interval, not a burst
    listed = api.get("/api/v1/schedules/").json()["results"]
    assert [s["id"] for s in listed] == [schedule_id]

    assert api.delete(f"/api/v1/schedules/{schedule_id}/").status_code == 204
    # beat re-reads the schedule at the start of every tick, before it sends anything: the second
    # task it sends after the delete comes from a tick that began after it, so saw the schedule gone.
    after_delete = len(sent_by_beat(beat))
    wait_for(lambda: len(sent_by_beat(beat)) >= after_delete + 2, timeout=60, message="two beat ticks after the delete")
    runs = len(sent_by_beat(beat, "every-2s"))  # every run beat ever sent, including one in flight
    wait_for(lambda: Notification.objects.filter(group_key="digest").count() == runs, timeout=60,
             message=f"the notifications of all {runs} runs sent")
    time.sleep(5)  # 2.5 intervals: no further run is sent, none is created
    assert len(sent_by_beat(beat, "every-2s")) == runs
    assert Notification.objects.filter(group_key="digest").count() == runs


# --- no ETA tasks ---------------------------------------------------------------------------------------

def test_a_retry_back_off_waits_in_the_database_not_as_an_eta_task_in_a_worker(api, stack, smtp_sink):
    """After a transient failure with a 30 s back-off, no message waits in RabbitMQ or in the worker."""
    from config.celery_app import app

    smtp_sink.fail_next(1)
    worker = stack.worker(env={"NOTIFIER_RETRY_BACKOFF_BASE": "30", "NOTIFIER_RETRY_BACKOFF_MAX": "60"})
    notification_id = _post_email(api)["id"]

    wait_for(lambda: _row(notification_id).attempts == 1, timeout=60, message="first attempt failed")
    row = _row(notification_id)
    assert row.status == Status.QUEUED
    assert row.next_attempt_at - timezone.now() > timedelta(seconds=15)  # the database holds the time
    assert all(_queue_depth(q) == 0 for q in settings.PRIORITY_QUEUES.values())
    inspector = app.control.inspect(destination=[worker.name], timeout=2)
    assert inspector.scheduled() == {worker.name: []}  # no ETA/countdown task held in memory
    assert inspector.reserved() == {worker.name: []}

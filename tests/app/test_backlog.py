"""Backpressure of the batch path (apps/notifications/backlog.py): a batch waits while a queue it feeds
is deep, at most NOTIFIER_BACKLOG_WAIT seconds, and is accepted in any case."""
import pytest
from rest_framework import status

from apps.notifications.intake import backpressure as backlog
from apps.notifications.intake.backpressure import Backlog, queue_depth
from apps.notifications.models import Notification
from apps.notifications.outbox import publish_deliveries


class FakeTime:
    def __init__(self):
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def _backlog(depths, time):
    """A Backlog whose queues report ``depths[queue]`` (a list: one value per read, the last repeats)."""
    asked: list[str] = []

    def depth(queue):
        asked.append(queue)
        values = depths[queue]
        return values.pop(0) if len(values) > 1 else values[0]

    return Backlog(depth=depth, clock=time.clock, sleep=time.sleep, ttl=0.025), asked


def test_a_shallow_queue_costs_one_look_and_no_wait():
    time = FakeTime()
    room, asked = _backlog({"notifications.normal": [3]}, time)
    assert room.wait_for_room(["normal"], limit=30, wait=2.0) == 0.0
    assert asked == ["notifications.normal"] and time.sleeps == []


def test_a_deep_queue_holds_the_batch_until_it_drains():
    time = FakeTime()
    room, asked = _backlog({"notifications.low": [90, 60, 31, 30]}, time)
    waited = room.wait_for_room(["low"], limit=30, wait=2.0)
    assert len(asked) == 4 and waited == pytest.approx(0.075)
    assert time.sleeps == [0.025, 0.025, 0.025]


def test_it_never_waits_longer_than_the_limit_and_then_accepts():
    time = FakeTime()
    room, _ = _backlog({"notifications.normal": [500]}, time)
    assert room.wait_for_room(["normal"], limit=30, wait=0.1) == pytest.approx(0.1)
    assert sum(time.sleeps) == pytest.approx(0.1)


def test_only_the_queues_of_the_batch_priorities_count():
    time = FakeTime()
    room, asked = _backlog({"notifications.low": [1000], "notifications.high": [0]}, time)
    assert room.wait_for_room(["high"], limit=30, wait=2.0) == 0.0
    assert asked == ["notifications.high"]


def test_reads_within_the_ttl_share_one_answer():
    time = FakeTime()
    room, asked = _backlog({"notifications.normal": [5]}, time)
    for _ in range(3):
        room.wait_for_room(["normal"], limit=30, wait=2.0)
    assert len(asked) == 1
    time.now += 0.03
    room.wait_for_room(["normal"], limit=30, wait=2.0)
    assert len(asked) == 2


def test_off_when_the_limit_is_zero_and_open_when_the_broker_does_not_answer():
    time = FakeTime()
    room, asked = _backlog({"notifications.normal": [1000]}, time)
    assert room.wait_for_room(["normal"], limit=0, wait=2.0) == 0.0
    assert asked == []

    def broken(queue):
        raise ConnectionError("broker down")

    room = Backlog(depth=broken, clock=time.clock, sleep=time.sleep)
    assert room.wait_for_room(["normal"], limit=30, wait=2.0) == 0.0
    assert time.sleeps == []


def test_the_depth_is_the_ready_messages_of_the_real_queue(purge_queues):
    assert queue_depth("notifications.normal") == 0
    for i in range(3):
        publish_deliveries([(f"00000000-0000-0000-0000-00000000000{i}", "normal")])
    assert queue_depth("notifications.normal") == 3
    assert queue_depth("notifications.high") == 0


@pytest.mark.django_db
def test_a_batch_waits_for_a_deep_queue_and_is_then_created(api, monkeypatch, settings):
    time = FakeTime()
    room, asked = _backlog({"notifications.normal": [200, 200, 10]}, time)
    monkeypatch.setattr(backlog, "_backlog", room)
    monkeypatch.setattr("apps.notifications.outbox.publish", lambda items, **options: None)
    settings.NOTIFIER_BACKLOG_MAX, settings.NOTIFIER_BACKLOG_WAIT = 30, 2.0
    items = [{"channel": "email", "to": f"u{i}@example.com", "subject": "s", "body": "b"} for i in range(3)]
    response = api.post("/api/v1/notifications/batch/", {"notifications": items}, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED
    assert [r["status"] for r in response.json()["results"]] == ["queued"] * 3
    assert asked == ["notifications.normal"] * 3 and len(time.sleeps) == 2
    assert Notification.objects.count() == 3


@pytest.mark.django_db
def test_a_batch_of_invalid_items_does_not_look_at_the_queues(api, monkeypatch):
    time = FakeTime()
    room, asked = _backlog({"notifications.normal": [1000]}, time)
    monkeypatch.setattr(backlog, "_backlog", room)
    response = api.post("/api/v1/notifications/batch/", {"notifications": [{"channel": "email", "to": "x"}]},
                        format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED
    assert "errors" in response.json()["results"][0]
    assert asked == []

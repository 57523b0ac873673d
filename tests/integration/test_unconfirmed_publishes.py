"""Rows whose publish was never confirmed (the web process died after the commit) are sent within seconds.

The web process is pointed at a broker that accepts connections and never answers, so its publish
can neither succeed nor fail (a failure would mark the rows due at once); it is then killed with
SIGKILL. Before issue 22 (item 12) those rows waited for the sweep, NOTIFIER_REQUEUE_AFTER = 600 s.
"""
import signal
import socket
import threading
from collections import Counter

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from apps.notifications.models import Notification, NotificationEvent, PendingPublish
from apps.notifications.outbox import publish_deliveries
from apps.notifications.specs import NotificationSpec
from apps.notifications.store import insert_notifications as notifications_insert
from tests.stack import wait_for
from tests.webserver import start_web

pytestmark = pytest.mark.integration

DELIVERY_QUEUES = ",".join(settings.PRIORITY_QUEUES.values())
RECOVERED = "republished: its publish was never confirmed"


class SilentBroker:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)  # held open, never answered

    def close(self):
        self.sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def silent_broker():
    broker = SilentBroker()
    yield broker
    broker.close()


def _start_recovery(stack):
    """A delivery worker, the maintenance worker and beat; the sweep's republish waits its default 600 s."""
    stack.worker(queues=DELIVERY_QUEUES, concurrency=2)
    stack.worker(queues=settings.MAINTENANCE_QUEUE, concurrency=2, pool="threads",
                 env={"NOTIFIER_REQUEUE_AFTER": "600", "NOTIFIER_PUBLISH_GRACE": "2"})
    stack.beat()


def _sent_once(smtp_sink, ids):
    received = Counter(m["X-Notifier-Id"] for m in smtp_sink.messages)
    return {i: received[i] for i in ids}


def test_a_single_create_answered_202_by_a_web_process_killed_before_its_publish_is_sent_within_seconds(
        stack, smtp_sink, api_key, silent_broker):
    _start_recovery(stack)
    base = start_web(stack, env={"NOTIFIER_TEST_BROKER_URL": silent_broker.url, "NOTIFIER_PUBLISH_GRACE": "2"})
    web = stack.procs[-1]

    response = httpx.post(f"{base}/api/v1/notifications/email/", timeout=30,
                          headers={"Authorization": f"Bearer {api_key.raw}"},
                          json={"to": "user@example.com", "subject": "Your code", "body": "123456",
                                "category": "otp"})
    assert response.status_code == 202, response.text
    web.kill(signal.SIGKILL)
    web.popen.wait(10)
    notification_id = response.json()["id"]
    assert Notification.objects.get(pk=notification_id).status == "queued"  # committed, never published
    assert PendingPublish.objects.count() == 1

    wait_for(lambda: Notification.objects.get(pk=notification_id).status == "sent", timeout=60, interval=0.2,
             message="the notification of the killed web process to be sent")
    assert NotificationEvent.objects.filter(notification_id=notification_id, detail=RECOVERED).count() == 1
    assert _sent_once(smtp_sink, [notification_id]) == {notification_id: 1}
    assert not PendingPublish.objects.exists()


def test_a_batch_committed_by_a_web_process_killed_before_its_publish_is_sent_within_seconds(
        stack, smtp_sink, api_key, silent_broker):
    _start_recovery(stack)
    base = start_web(stack, env={"NOTIFIER_TEST_BROKER_URL": silent_broker.url, "NOTIFIER_PUBLISH_GRACE": "2",
                                 "NOTIFIER_BACKLOG_MAX": "0"})  # the backlog check would ask the silent broker
    web = stack.procs[-1]
    items = [{"channel": "email", "to": f"user{i}@example.com", "subject": f"batch {i}", "body": "hello"}
             for i in range(50)]

    def post():  # its answer waits for a confirm that never comes; the process dies first
        try:
            httpx.post(f"{base}/api/v1/notifications/batch/", json={"notifications": items}, timeout=60,
                       headers={"Authorization": f"Bearer {api_key.raw}"})
        except httpx.HTTPError:
            pass

    poster = threading.Thread(target=post, daemon=True)
    poster.start()
    wait_for(lambda: Notification.objects.count() == len(items), timeout=30, message="the batch to be committed")
    web.kill(signal.SIGKILL)
    web.popen.wait(10)
    poster.join(30)
    ids = [str(i) for i in Notification.objects.values_list("id", flat=True)]
    assert PendingPublish.objects.count() == 1  # one entry for the batch

    wait_for(lambda: Notification.objects.filter(status="sent").count() == len(items), timeout=90, interval=0.2,
             message="every notification of the killed web process's batch to be sent")
    assert NotificationEvent.objects.filter(detail=RECOVERED).count() == len(items)
    assert _sent_once(smtp_sink, ids) == dict.fromkeys(ids, 1)


def test_a_published_group_whose_confirm_was_lost_and_its_republish_both_reach_workers_and_send_once(
        stack, smtp_sink):
    """The first message did reach RabbitMQ (only its confirm was lost): both messages are delivered."""
    specs = [NotificationSpec(channel="email", category="transactional", priority="normal",
                              to=f"user{i}@example.com", content={"subject": f"twice {i}", "body": "hello"})
             for i in range(20)]
    pending = []
    ids = [str(n.id) for n in notifications_insert(specs=specs, api_key_ids=[None] * len(specs), now=timezone.now(),
                                                   pending=pending)]
    publish_deliveries([(i, "normal") for i in ids])  # on the broker; its PendingPublish entry is left
    assert len(pending) == 1 and PendingPublish.objects.count() == 1

    # The maintenance worker alone first: after the grace it publishes the group a second time.
    stack.worker(queues=settings.MAINTENANCE_QUEUE, concurrency=2, pool="threads",
                 env={"NOTIFIER_PUBLISH_GRACE": "2"})
    stack.beat()
    wait_for(lambda: NotificationEvent.objects.filter(detail=RECOVERED).count() == len(ids), timeout=60,
             message="the group to be republished")
    wait_for(lambda: _queue_depth(settings.PRIORITY_QUEUES["normal"]) == 2, timeout=30,
             message="both messages of the group waiting in notifications.normal")

    stack.worker(queues=DELIVERY_QUEUES, concurrency=2)
    wait_for(lambda: Notification.objects.filter(id__in=ids, status="sent").count() == len(ids), timeout=60,
             message="the group to be sent")
    wait_for(lambda: _queue_depth(settings.PRIORITY_QUEUES["normal"]) == 0, timeout=30,
             message="both messages consumed")
    assert _sent_once(smtp_sink, ids) == dict.fromkeys(ids, 1)
    assert NotificationEvent.objects.filter(notification_id__in=ids, status="sending").count() == len(ids)


def _queue_depth(name):
    from config.celery_app import app

    with app.connection_for_write() as conn:
        return conn.default_channel.queue_declare(queue=name, passive=True).message_count

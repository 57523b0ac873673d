"""NOTIFIER_QUEUE_TYPE=quorum: the queues a RabbitMQ cluster replicates, with a real worker delivering from them."""
import os
import subprocess
import sys
from urllib.parse import quote

import httpx
import pytest
from django.conf import settings

from apps.notifications.models import Notification
from tests.stack import ROOT, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

API = "http://127.0.0.1:15672/api"
AUTH = ("guest", "guest")

CREATE = """
import django
django.setup()
from apps.notifications.intake.create import notifications_create
from apps.notifications.specs import NotificationSpec
[n] = notifications_create(specs=[NotificationSpec(channel="email", category="otp", priority="high",
                                                   content={"subject": "Code", "body": "123456"}, to="q@example.com")])
print(n.id)
"""


@pytest.fixture
def quorum_vhost():
    vhost = f"{settings.TEST_VHOST}_quorum"
    name = quote(vhost, safe="")
    try:
        httpx.delete(f"{API}/vhosts/{name}", auth=AUTH, timeout=10)
        assert httpx.put(f"{API}/vhosts/{name}", auth=AUTH, timeout=10).status_code in (201, 204)
    except httpx.HTTPError as exc:
        pytest.fail(f"RabbitMQ management API not reachable: {exc}")
    permissions = {"configure": ".*", "write": ".*", "read": ".*"}
    assert httpx.put(f"{API}/permissions/{name}/guest", json=permissions, auth=AUTH, timeout=10).status_code in (201, 204)
    yield vhost
    httpx.delete(f"{API}/vhosts/{name}", auth=AUTH, timeout=30)


def _queues(vhost):
    response = httpx.get(f"{API}/queues/{quote(vhost, safe='')}", auth=AUTH, timeout=10)
    return {q["name"]: q for q in response.json()} if response.status_code == 200 else {}


def test_a_worker_delivers_from_quorum_queues(quorum_vhost, stack, smtp_sink):
    env = {"NOTIFIER_TEST_VHOST": quorum_vhost, "NOTIFIER_QUEUE_TYPE": "quorum"}
    stack.worker(env=env, wait=False)
    priority = ["notifications.high", "notifications.normal", "notifications.low"]

    def consumed():
        queues = _queues(quorum_vhost)
        return all(queues.get(name, {}).get("consumers", 0) >= 1 for name in priority) and queues

    queues = wait_for(consumed, timeout=90, interval=1, message="the worker consuming the quorum queues")
    for name in priority:
        assert queues[name]["type"] == "quorum"
        assert queues[name]["arguments"]["x-dead-letter-exchange"] == settings.NOTIFIER_DEAD_EXCHANGE

    created = subprocess.run([sys.executable, "-c", CREATE], cwd=ROOT, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env})
    assert created.returncode == 0, created.stderr
    notification_id = created.stdout.strip().splitlines()[-1]

    wait_for(lambda: Notification.objects.get(pk=notification_id).status == "sent", timeout=60,
             message="the notification sent through the quorum queue")
    assert [m["Subject"] for m in smtp_sink.messages] == ["Code"]
    assert _queues(quorum_vhost)[settings.NOTIFIER_DEAD_QUEUE]["type"] == "quorum"


def test_a_worker_on_quorum_queues_declares_no_delayed_delivery_queues(quorum_vhost, stack):
    """Celery's native delayed delivery (28 celery_delayed_* quorum queues per broker URL, re-declared at
    every reconnection, retrying a dead node for ~16 s first) is left out: notifier sends no ETA tasks."""
    env = {"NOTIFIER_TEST_VHOST": quorum_vhost, "NOTIFIER_QUEUE_TYPE": "quorum"}
    worker = stack.worker(env=env, wait=False)

    def consumed():
        queues = _queues(quorum_vhost)
        return queues.get("notifications.normal", {}).get("consumers", 0) >= 1 and queues

    queues = wait_for(consumed, timeout=90, interval=1, message="the worker consuming the quorum queues")
    exchanges = httpx.get(f"{API}/exchanges/{quote(quorum_vhost, safe='')}", auth=AUTH, timeout=10).json()
    assert not [name for name in queues if name.startswith("celery_delayed")]
    assert not [e["name"] for e in exchanges if e["name"].startswith("celery_delayed")]
    assert worker.alive()

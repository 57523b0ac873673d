"""Flower, as `make run` starts it: basic auth, workers, and queue lengths from RabbitMQ's management API."""
import socket
import sys
from pathlib import Path

import httpx
import pytest

from tests.stack import ALL_QUEUES, wait_for

pytestmark = pytest.mark.integration

CELERY = str(Path(sys.executable).with_name("celery"))
USER, PASSWORD = "ops", "flower-test-pass"
PRIORITY = ("notifications.high", "notifications.normal", "notifications.low")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_flower(stack, port, env):
    return stack._start(
        [CELERY, "-A", "config.celery_app", "flower", "--address=127.0.0.1", f"--port={port}",
         "--conf=config/flowerconfig.py"],
        f"flower-{port}", env)


@pytest.fixture
def flower(stack):
    stack.worker(queues=ALL_QUEUES)
    port = free_port()
    proc = start_flower(stack, port, {"FLOWER_BASIC_AUTH": f"{USER}:{PASSWORD}"})
    base = f"http://127.0.0.1:{port}"

    def answers():
        if not proc.alive():
            raise AssertionError(f"flower exited:\n{proc.output()}")
        try:
            return httpx.get(f"{base}/healthcheck", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, timeout=60, interval=0.3, message="flower to answer")
    return base


def test_flower_answers_401_without_credentials(flower):
    assert httpx.get(f"{flower}/api/workers", timeout=10).status_code == 401
    assert httpx.get(f"{flower}/api/queues/length", timeout=10).status_code == 401
    assert httpx.get(f"{flower}/api/workers", auth=(USER, "wrong"), timeout=10).status_code == 401


def test_flower_lists_the_worker_pool_and_the_three_priority_queues_with_credentials(flower):
    auth = (USER, PASSWORD)

    def worker_queues():
        workers = httpx.get(f"{flower}/api/workers", params={"refresh": "1"}, auth=auth, timeout=15).json()
        return {q["name"] for info in workers.values() for q in info.get("active_queues") or []}

    assert wait_for(worker_queues, timeout=60, interval=0.5, message="flower to see the worker") >= {
        "notifications.high", "notifications.normal", "notifications.low"}

    # Queue lengths come from RabbitMQ's management API (an empty list if Flower cannot reach it);
    # the API refreshes its statistics every few seconds, hence the wait for counts and consumers.
    def queue_lengths():
        response = httpx.get(f"{flower}/api/queues/length", auth=auth, timeout=15)
        assert response.status_code == 200
        queues = {q["name"]: q for q in response.json()["active_queues"]}
        if all("messages" in q for q in queues.values()) and all(
                queues.get(name, {}).get("consumers", 0) >= 1 for name in PRIORITY):
            return queues
        return None

    queues = wait_for(queue_lengths, timeout=60, interval=1, message="queue lengths from the management API")
    assert set(queues) == {"notifications.high", "notifications.normal", "notifications.low",
                           "notifications.maintenance", "notifications.dead"}
    assert queues["notifications.dead"]["consumers"] == 0


def test_flower_lists_a_priority_queue_even_when_no_worker_consumes_it(stack):
    """A pool that is down shows up with 0 consumers instead of vanishing from the list."""
    stack.worker(queues="notifications.high")
    port = free_port()
    proc = start_flower(stack, port, {"FLOWER_BASIC_AUTH": f"{USER}:{PASSWORD}"})
    base = f"http://127.0.0.1:{port}"

    def lengths():
        if not proc.alive():
            raise AssertionError(f"flower exited:\n{proc.output()}")
        try:
            response = httpx.get(f"{base}/api/queues/length", auth=(USER, PASSWORD), timeout=10)
        except httpx.HTTPError:
            return None
        queues = {q["name"]: q for q in response.json()["active_queues"]} if response.status_code == 200 else {}
        # (statistics lag a few seconds behind a previous test's worker leaving)
        return queues if queues.get("notifications.low", {}).get("consumers", -1) == 0 else None

    queues = wait_for(lengths, timeout=60, interval=1, message="flower listing notifications.low with 0 consumers")
    assert {"notifications.high", "notifications.normal", "notifications.dead"} <= set(queues)


def test_flower_refuses_to_start_without_credentials(stack):
    proc = start_flower(stack, free_port(), {"FLOWER_BASIC_AUTH": ""})
    proc.popen.wait(60)
    assert proc.popen.returncode != 0
    assert "FLOWER_BASIC_AUTH" in proc.output()

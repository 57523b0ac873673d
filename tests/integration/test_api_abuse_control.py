"""Against a real gunicorn with two worker processes: throttling is shared by the workers, and
50 concurrent identical requests with one Idempotency-Key create exactly one notification."""
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from apps.apikeys.services import api_key_create
from apps.notifications.models import Notification
from tests.live import Gunicorn

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path, transactional_db, purge_queues):
    s = Gunicorn(tmp_path, workers=2, threads=8).start()
    yield s
    s.stop()


def _fresh_get(url: str, headers: dict) -> httpx.Response:
    # A new connection per request, so the kernel spreads them over both workers.
    with httpx.Client(timeout=30) as client:
        return client.get(url, headers=headers)


def test_a_key_over_its_rate_gets_429_with_retry_after_across_two_gunicorn_workers(server):
    issued = api_key_create(name="burst10", rate_limit=0.01, rate_burst=10)  # 10 now, then one per 100 s
    headers = {"Authorization": f"Bearer {issued.raw}"}
    url = server.url + "/api/v1/notifications/"

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: _fresh_get(url, headers), range(40)))

    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 429}, codes
    # Shared bucket: 10 in total (at most one refilled while the test runs). Per-process
    # buckets would have let each worker's share of the 40 through up to 10 each.
    assert 10 <= codes.count(200) <= 11, codes
    limited = [r for r in responses if r.status_code == 429]
    assert limited and all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert all(r.json()["errors"]["detail"] for r in limited)
    assert len(server.serving_pids()) == 2, server.output()[-2000:]


def test_fifty_concurrent_identical_requests_with_one_idempotency_key_create_one_notification(server):
    issued = api_key_create(name="retrying-client")
    headers = {"Authorization": f"Bearer {issued.raw}", "Idempotency-Key": "checkout-7f3a"}
    url = server.url + "/api/v1/notifications/email/"
    body = {"to": "alice@example.com", "subject": "Your order", "body": "Thanks!"}
    start = threading.Barrier(50)

    def post(_):
        with httpx.Client(timeout=60) as client:
            start.wait()
            return client.post(url, json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(post, range(50)))

    codes = [r.status_code for r in responses]
    assert set(codes) <= {202, 409}, codes
    print("status codes:", {c: codes.count(c) for c in set(codes)})
    accepted = [r.json()["id"] for r in responses if r.status_code == 202]
    assert accepted and len(set(accepted)) == 1, codes
    assert Notification.objects.filter(api_key=issued.api_key).count() == 1
    assert all("Idempotency-Key" in r.json()["errors"] for r in responses if r.status_code == 409)

    replay = httpx.post(url, json=body, headers=headers, timeout=30)
    assert replay.status_code == 202
    assert replay.json()["id"] == accepted[0]
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert len(server.serving_pids()) == 2, server.output()[-2000:]

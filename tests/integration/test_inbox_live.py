"""Live inbox over the real stack: gunicorn (ASGI) + Celery worker + RabbitMQ + Redis pub/sub."""
import time

import httpx
import pytest

from apps.notifications.models import Notification
from apps.recipients.models import Recipient
from tests.stack import wait_for
from tests.webserver import SseClient, start_web

pytestmark = pytest.mark.integration


@pytest.fixture
def live(stack, api_key):
    """Worker + web server; an HTTP client with the test API key."""
    Recipient.objects.create(external_id="alice")
    Recipient.objects.create(external_id="bob")
    stack.worker(concurrency=1)  # one pool process, so the warm-up below warms the one that delivers
    base = start_web(stack)
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {api_key.raw}"}, timeout=30)
    yield base, client
    client.close()


def _post_in_app(client, title, recipient="alice"):
    response = client.post("/api/v1/notifications/in_app/", json={"recipient": recipient, "title": title,
                                                                 "body": f"{title} body"})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _token(client, recipient="alice"):
    response = client.post(f"/api/v1/recipients/{recipient}/token/", json={})
    assert response.status_code == 200, response.text
    return response.json()["token"]


def test_sse_client_receives_a_new_item_within_one_second_of_the_post(live):
    base, client = live
    token = _token(client)
    stream = SseClient(f"{base}/api/v1/inbox/stream/", headers={"Authorization": f"Bearer {token}"})
    try:
        _, ready = stream.next_event("ready")
        assert stream.status == 200
        assert ready == {"unread_count": 0}

        # Warm-up (not timed): the first task in a fresh worker process imports and connects.
        warm = _post_in_app(client, "warm-up")
        stream.next_event("items", where=lambda d: d["items"][0]["id"] == warm)

        posted_at = time.monotonic()
        notification_id = _post_in_app(client, "Your order shipped")
        received_at, event = stream.next_event("items", timeout=30,
                                               where=lambda d: d["items"][0]["id"] == notification_id)
        latency = received_at - posted_at
        print(f"inbox item reached the SSE client {latency * 1000:.0f} ms after the post")
        assert latency < 1.0, f"item arrived {latency:.3f}s after the post"
        [item] = event["items"]
        assert item["title"] == "Your order shipped" and item["read_at"] is None
        assert event["unread_count"] == 2

        # Reading it (with the recipient token) pushes the new count.
        response = httpx.post(f"{base}/api/v1/recipients/alice/inbox/{notification_id}/read/",
                              headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        _, update = stream.next_event("update")
        assert update["unread_count"] == 1
        assert update["items"][0]["id"] == notification_id and update["items"][0]["read_at"]
        assert Notification.objects.get(pk=notification_id).status == "delivered"
    finally:
        stream.close()


def test_stream_only_carries_the_token_holders_items_and_query_token_works(live):
    base, client = live
    stream = SseClient(f"{base}/api/v1/inbox/stream/?token={_token(client, 'bob')}")
    try:
        stream.next_event("ready")
        _post_in_app(client, "for alice")
        bobs = _post_in_app(client, "for bob", recipient="bob")
        _, event = stream.next_event("items")
        assert [i["id"] for i in event["items"]] == [bobs]
    finally:
        stream.close()


def test_stream_refuses_missing_expired_and_api_key_credentials(live, api_key):
    base, client = live
    assert httpx.get(f"{base}/api/v1/inbox/stream/").status_code == 401
    assert httpx.get(f"{base}/api/v1/inbox/stream/?token=eyJhbGciOiJIUzI1NiJ9.e30.bad").status_code == 401
    response = httpx.get(f"{base}/api/v1/inbox/stream/", headers={"Authorization": f"Bearer {api_key.raw}"})
    assert response.status_code == 403


def test_stream_sends_keep_alive_comments_frees_its_subscription_and_ends_at_token_expiry(stack, api_key):
    import redis
    from django.conf import settings

    from apps.inbox.pubsub import channel_name
    from apps.inbox.tokens import recipient_token_issue

    alice = Recipient.objects.create(external_id="alice")
    base = start_web(stack, env={"NOTIFIER_INBOX_STREAM_HEARTBEAT": "0.2"})
    token, _ = recipient_token_issue(recipient=alice)
    r = redis.Redis.from_url(settings.REDIS_URL)
    channel = channel_name(alice.pk)
    stream = SseClient(f"{base}/api/v1/inbox/stream/?token={token}")
    stream.next_event("ready")
    wait_for(lambda: stream.comments >= 2, timeout=10, message="keep-alive comments")
    assert r.pubsub_numsub(channel)[0][1] == 1
    stream.close()
    wait_for(lambda: r.pubsub_numsub(channel)[0][1] == 0, timeout=10, message="the subscription to be dropped")

    # A stream ends when its token expires; the client must mint a new one.
    short, _ = recipient_token_issue(recipient=alice, ttl=2)
    stream = SseClient(f"{base}/api/v1/inbox/stream/?token={short}")
    try:
        stream.next_event("ready")
        _, expired = stream.next_event("expired", timeout=15)
        assert "expired" in expired["detail"]
        wait_for(lambda: r.pubsub_numsub(channel)[0][1] == 0, timeout=10, message="the subscription to be dropped")
    finally:
        stream.close()


def test_open_streams_do_not_hold_the_threads_that_serve_the_api(stack, api_key):
    """Twice as many open streams as web threads, in one web process: the API still answers."""
    from apps.inbox.tokens import recipient_token_issue

    alice = Recipient.objects.create(external_id="alice")
    # Keep-alives every 0.5 s (not 15): a stream's reader thread sees its stop flag only when a line
    # arrives, so closing the four streams would otherwise wait out the 15 s heartbeat.
    base = start_web(stack, env={"NOTIFIER_WEB_THREADS": "2", "NOTIFIER_INBOX_STREAM_HEARTBEAT": "0.5"})
    token, _ = recipient_token_issue(recipient=alice)
    streams = [SseClient(f"{base}/api/v1/inbox/stream/?token={token}") for _ in range(4)]
    try:
        for stream in streams:
            stream.next_event("ready")
        for _ in range(3):
            response = httpx.get(f"{base}/api/v1/recipients/alice/inbox/",
                                 headers={"Authorization": f"Bearer {api_key.raw}"}, timeout=20)
            assert response.status_code == 200
            assert response.json()["unread_count"] == 0
    finally:
        for stream in streams:
            stream.close()

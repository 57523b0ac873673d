"""Web Push through a real worker: a redirect is not followed, the push service's answer body is not
stored, and a host that resolves to a private address is refused right before connecting."""
import json
import socket

import pytest
from rest_framework import status

from apps.notifications.models import Notification
from apps.recipients.models import Device, Recipient
from tests.peers import HttpPeer, Reply
from tests.stack import wait_for

pytestmark = pytest.mark.integration

SECRET = "internal-admin-token-7f3a9c"


def _env(web_push, *, allow_private: bool) -> dict[str, str]:
    return {"NOTIFIER_PUSH_PROVIDERS": "webpush", "VAPID_PRIVATE_KEY": web_push.vapid_private_key,
            "VAPID_SUBJECT": "mailto:ops@example.com", "NOTIFIER_PROVIDER_TIMEOUT": "2",
            "NOTIFIER_PUSH_ALLOW_PRIVATE": "1" if allow_private else "0"}


def _with_endpoint(subscription: str, endpoint: str) -> str:
    value = json.loads(subscription)
    value["endpoint"] = endpoint
    return json.dumps(value)


def _finished(pk):
    n = Notification.objects.get(pk=pk)
    return n if n.status in ("sent", "failed") else None


@pytest.fixture
def peers():
    started = []

    def start():
        peer = HttpPeer().start()
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


def test_a_worker_follows_no_redirect_and_keeps_no_answer_body_of_a_push_service(api, stack, web_push, peers,
                                                                                 settings):
    settings.NOTIFIER_PUSH_ALLOW_PRIVATE = True  # the peers are on 127.0.0.1 (this process accepts the tokens)
    target = web_push.subscribe()
    redirector, chatty = peers(), peers()
    redirector.script(Reply(307, "", headers={"Location": json.loads(target)["endpoint"]}))
    chatty.script(Reply(400, f"bad subscription; debug: {SECRET}"))
    stack.worker(env=_env(web_push, allow_private=True))

    ids = {}
    for name, peer in (("redirect", redirector), ("chatty", chatty)):
        response = api.post("/api/v1/notifications/push/", {
            "device_tokens": [_with_endpoint(target, f"{peer.url}/push/{name}")], "title": "t", "body": "b",
        }, format="json")
        assert response.status_code == status.HTTP_202_ACCEPTED, response.content
        ids[name] = response.json()["id"]

    redirected = wait_for(lambda: _finished(ids["redirect"]), timeout=60, message="the redirected push to end")
    assert redirected.status == "failed" and redirected.attempts == 1  # permanent: not retried
    assert "307" in redirected.last_error and "redirect" in redirected.last_error
    assert len(redirector.requests) == 1
    assert web_push.requests == []  # the redirect target was never reached

    refused = wait_for(lambda: _finished(ids["chatty"]), timeout=60, message="the refused push to end")
    assert refused.status == "failed" and "Web Push 400: bad request" in refused.last_error
    shown = api.get(f"/api/v1/notifications/{ids['chatty']}/").content.decode()
    for text in (refused.last_error, " ".join(e.detail for e in refused.events.all()), shown):
        assert SECRET not in text and "debug" not in text


def test_a_worker_refuses_a_push_endpoint_whose_host_resolves_to_a_private_address(api, stack, web_push):
    name = next((n for n in ("vm", "runsc") if _resolves_to_loopback(n)), None)
    if name is None:
        pytest.skip("no host name resolving to 127.0.0.1 besides localhost")
    subscription = web_push.subscribe()
    endpoint = json.loads(subscription)["endpoint"].replace("http://127.0.0.1", f"https://{name}")
    recipient = Recipient.objects.create(external_id="user-ssrf")
    # Stored before this check existed, or its DNS answer changed since registration.
    Device.objects.create(recipient=recipient, platform="web", token=_with_endpoint(subscription, endpoint))
    stack.worker(env=_env(web_push, allow_private=False))

    response = api.post("/api/v1/notifications/push/", {"recipient": "user-ssrf", "title": "t", "body": "b"},
                        format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    n = wait_for(lambda: _finished(response.json()["id"]), timeout=60, message="the push to end")
    assert n.status == "failed" and n.attempts == 1
    assert "non-public address" in n.last_error and "127.0.0.1" not in n.last_error
    assert web_push.requests == []


def _resolves_to_loopback(name: str) -> bool:
    try:
        return socket.gethostbyname(name).startswith("127.")
    except OSError:
        return False

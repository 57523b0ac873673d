"""Web Push endpoints are the client's URLs: https to public hosts only, checked at registration, when a
direct token is accepted and right before each connection; no redirect is followed and nothing of the
push service's answer body is kept. Real HTTP peers on 127.0.0.1; ``vm`` resolves to 127.0.0.1 here
(/etc/hosts), so it stands for a public-looking name whose DNS answer is internal."""
import json
import socket

import pytest
from rest_framework import status

from apps.recipients.models import Device, Recipient
from notifier.channels.base import Message, ProviderError
from notifier.channels.push import WebPushProvider
from tests.peers import HttpPeer, Reply

pytestmark = pytest.mark.django_db

SECRET = "internal-admin-token-7f3a9c"


def _loopback_name() -> str:
    """A host name other than localhost that resolves to a loopback address, or skip."""
    for name in ("vm", "runsc"):
        try:
            if socket.gethostbyname(name).startswith("127."):
                return name
        except OSError:
            continue
    pytest.skip("no host name resolving to 127.0.0.1 besides localhost")


def _with_endpoint(subscription: str, endpoint: str) -> str:
    value = json.loads(subscription)
    value["endpoint"] = endpoint
    return json.dumps(value)


def _push(to):
    return Message(notification_id="n-1", channel="push", to=to, title="t", body="b", platform="web")


def _provider(peer, *, allow_private):
    return WebPushProvider(private_key=peer.vapid_private_key, subject="mailto:ops@example.com", timeout=2.0,
                           allow_private=allow_private)


@pytest.fixture
def alice():
    return Recipient.objects.create(external_id="alice")


@pytest.mark.parametrize("endpoint", [
    "https://127.0.0.1/push/abc", "https://10.0.0.7/push/abc", "https://169.254.169.254/latest/meta-data",
    "https://[::1]/push/abc", "https://localhost/push/abc", "https://{loopback_name}/push/abc",
    "http://93.184.215.14/push/abc", "https://user:pw@93.184.215.14/push/abc",
])
def test_a_web_subscription_not_https_to_a_public_host_is_refused_at_registration(api, alice, web_push,
                                                                                   endpoint):
    if "{loopback_name}" in endpoint:
        endpoint = endpoint.format(loopback_name=_loopback_name())
    token = _with_endpoint(web_push.subscribe(), endpoint)
    response = api.post("/api/v1/recipients/alice/devices/", {"platform": "web", "token": token}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST, response.content
    assert "refused" in " ".join(response.json()["errors"]["token"])
    assert not Device.objects.exists()


def test_a_web_subscription_to_a_public_https_host_is_registered(api, alice, web_push):
    token = _with_endpoint(web_push.subscribe(), "https://93.184.215.14/push/abc")
    response = api.post("/api/v1/recipients/alice/devices/", {"platform": "web", "token": token}, format="json")
    assert response.status_code == status.HTTP_201_CREATED, response.content


def test_with_push_allow_private_a_local_push_service_can_be_registered(api, alice, web_push, settings):
    settings.NOTIFIER_PUSH_ALLOW_PRIVATE = True
    response = api.post("/api/v1/recipients/alice/devices/", {"platform": "web", "token": web_push.subscribe()},
                        format="json")
    assert response.status_code == status.HTTP_201_CREATED, response.content


@pytest.mark.parametrize("field", ["device_tokens", "to"])
def test_a_direct_web_push_token_to_a_private_address_is_refused_when_the_notification_is_accepted(
        api, web_push, field):
    token = web_push.subscribe()  # http://127.0.0.1:<port>/push/...
    value = [token] if field == "device_tokens" else token
    response = api.post("/api/v1/notifications/push/", {field: value, "title": "t", "body": "b"}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST, response.content
    assert "refused" in " ".join(response.json()["errors"][field])

    batch = api.post("/api/v1/notifications/batch/", {"notifications": [
        {"channel": "push", field: value, "title": "t", "body": "b"}]}, format="json")
    assert batch.status_code == status.HTTP_202_ACCEPTED, batch.content
    [result] = batch.json()["results"]
    assert "id" not in result and "refused" in " ".join(result["errors"][field])


def test_web_push_refuses_at_send_time_a_host_that_resolves_to_a_private_address(web_push):
    name = _loopback_name()
    subscription = web_push.subscribe()
    endpoint = json.loads(subscription)["endpoint"].replace("127.0.0.1", name).replace("http://", "https://")
    with pytest.raises(ProviderError) as info:
        _provider(web_push, allow_private=False).send(_push(_with_endpoint(subscription, endpoint)))
    assert info.value.permanent and info.value.code == "ssrf"
    assert "127.0.0.1" not in str(info.value)
    assert web_push.requests == []  # no connection reached the peer


def test_web_push_refuses_at_send_time_a_plain_http_or_literal_private_endpoint(web_push):
    with pytest.raises(ProviderError) as info:
        _provider(web_push, allow_private=False).send(_push(web_push.subscribe()))
    assert info.value.permanent and info.value.code == "ssrf"
    assert web_push.requests == []


@pytest.mark.parametrize("redirect", [301, 307])
def test_web_push_does_not_follow_a_redirect_and_fails_for_good(web_push, redirect):
    target = web_push.subscribe()  # a working endpoint the redirect points at
    redirector = HttpPeer().start()
    try:
        redirector.script(Reply(redirect, "", headers={"Location": json.loads(target)["endpoint"]}))
        token = _with_endpoint(target, f"{redirector.url}/push/moved")
        with pytest.raises(ProviderError) as info:
            _provider(web_push, allow_private=True).send(_push(token))
    finally:
        redirector.stop()
    assert info.value.permanent and info.value.code == str(redirect)
    assert f"Web Push {redirect}" in str(info.value) and "redirect" in str(info.value)
    assert len(redirector.requests) == 1
    assert web_push.requests == []  # the redirect target was never asked


def test_web_push_keeps_nothing_of_the_push_services_answer_body(web_push):
    web_push.script(Reply(400, f"bad request; debug: {SECRET}"))
    with pytest.raises(ProviderError) as info:
        _provider(web_push, allow_private=True).send(_push(web_push.subscribe()))
    assert info.value.permanent
    assert str(info.value.message) == "Web Push 400: bad request"
    assert SECRET not in str(info.value)

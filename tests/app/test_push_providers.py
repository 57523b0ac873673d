"""FCM HTTP v1 and Web Push providers against real HTTP peers on 127.0.0.1."""
import json
import time

import pytest

from notifier.channels.base import Message, ProviderError
from notifier.channels.push import FcmPushProvider, WebPushProvider
from tests.peers import Reply


def _push(to, platform="android", data=None, priority="normal"):
    return Message(notification_id="n-1", channel="push", to=to, title="Order shipped",
                   body="It arrives tomorrow.", data=data or {}, platform=platform, priority=priority)


def _fcm(peer, **extra):
    return FcmPushProvider(credentials_file=peer.credentials_file, api_base_url=peer.url, timeout=1.0, **extra)


def _webpush(peer, **extra):
    extra.setdefault("allow_private", True)  # the push service is on 127.0.0.1, over plain http
    return WebPushProvider(private_key=peer.vapid_private_key, subject="mailto:ops@example.com", timeout=1.0,
                           **extra)


def test_fcm_sends_a_v1_message_authorised_by_a_token_from_the_service_accounts_token_uri(fake_fcm):
    provider = _fcm(fake_fcm)
    name = provider.send(_push("android-token-1", data={"order": 42, "kind": "shipping", "tags": ["a"]}))

    assert name.startswith("projects/notifier-test/messages/")
    [token_request] = fake_fcm.token_requests
    [claims] = fake_fcm.assertions  # the JWT assertion verified with the service account's public key
    assert claims["iss"] == fake_fcm.service_account["client_email"]
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert token_request.path == "/token"  # the service account's own token_uri was used
    [request] = fake_fcm.messages
    assert request.path == "/v1/projects/notifier-test/messages:send"
    assert request.headers["Authorization"].removeprefix("Bearer ") in fake_fcm.issued
    message = request.json()["message"]
    assert message["token"] == "android-token-1"
    assert message["notification"] == {"title": "Order shipped", "body": "It arrives tomorrow."}
    assert message["data"] == {"order": "42", "kind": "shipping", "tags": '["a"]'}


def test_fcm_caches_the_access_token_until_it_expires(fake_fcm):
    provider = _fcm(fake_fcm)
    provider.send_many([_push(f"t{i}", platform="ios") for i in range(5)])
    assert len(fake_fcm.messages) == 5
    assert len(fake_fcm.token_requests) == 1


def test_fcm_fetches_a_new_token_after_expiry(fake_fcm):
    fake_fcm.token_lifetime = 1  # google-auth refreshes tokens within its clock skew of expiry
    provider = _fcm(fake_fcm)
    provider.send(_push("t1"))
    provider.send(_push("t2"))
    assert len(fake_fcm.token_requests) == 2


def test_fcm_unregistered_token_is_permanent_and_marks_the_device(fake_fcm):
    fake_fcm.unregistered.add("dead-token")
    with pytest.raises(ProviderError) as info:
        _fcm(fake_fcm).send(_push("dead-token"))
    assert info.value.permanent
    assert info.value.suppress == "unregistered_device"


@pytest.mark.parametrize("status", [500, 503, 429])
def test_fcm_server_errors_and_throttling_are_transient(fake_fcm, status):
    provider = _fcm(fake_fcm)
    provider.access_token()
    fake_fcm.script(Reply(status, {"error": {"code": status, "message": "try later", "status": "UNAVAILABLE"}},
                          headers={"Retry-After": "3"}))
    with pytest.raises(ProviderError) as info:
        provider.send(_push("t1"))
    assert not info.value.permanent
    assert info.value.retry_after == 3.0


def test_fcm_timeout_is_transient(fake_fcm):
    provider = _fcm(fake_fcm)
    provider.access_token()
    fake_fcm.script(Reply(200, {"name": "late"}, delay=2.0))
    with pytest.raises(ProviderError) as info:
        provider.send(_push("t1"))
    assert not info.value.permanent


def test_fcm_accepts_android_and_ios_devices_only(fake_fcm, web_push):
    provider = _fcm(fake_fcm)
    assert provider.accepts(_push("x", platform="android"))
    assert provider.accepts(_push("x", platform="ios"))
    assert not provider.accepts(_push(web_push.subscribe(), platform="web"))
    assert not provider.accepts(_push(web_push.subscribe(), platform=""))  # a subscription JSON is web


def test_web_push_payload_is_encrypted_for_the_subscription_and_signed_with_vapid(web_push):
    subscription = web_push.subscribe()
    _webpush(web_push).send(_push(subscription, platform="web", data={"url": "/orders/42"}, priority="high"))

    [delivered] = web_push.delivered
    assert delivered["payload"]["title"] == "Order shipped"
    assert delivered["payload"]["body"] == "It arrives tomorrow."
    assert delivered["payload"]["data"] == {"url": "/orders/42"}
    assert delivered["vapid_claims"]["sub"] == "mailto:ops@example.com"
    assert delivered["vapid_claims"]["exp"] > time.time()
    assert delivered["headers"]["Content-Encoding"] == "aes128gcm"
    assert delivered["headers"]["Urgency"] == "high"
    # What travelled was ciphertext, not the JSON.
    assert b"Order shipped" not in web_push.requests[0].body


@pytest.mark.parametrize("gone", [404, 410])
def test_web_push_gone_subscription_is_permanent_and_marks_the_device(web_push, gone):
    subscription = web_push.subscribe()
    sub_id = json.loads(subscription)["endpoint"].rsplit("/", 1)[-1]
    if gone == 410:
        web_push.gone.add(sub_id)
    else:
        del web_push.subscriptions[sub_id]
    with pytest.raises(ProviderError) as info:
        _webpush(web_push).send(_push(subscription, platform="web"))
    assert info.value.permanent and info.value.suppress == "unregistered_device"


@pytest.mark.parametrize("status", [500, 429])
def test_web_push_server_errors_are_transient(web_push, status):
    web_push.script(Reply(status, "busy", headers={"Retry-After": "2"}))
    with pytest.raises(ProviderError) as info:
        _webpush(web_push).send(_push(web_push.subscribe(), platform="web"))
    assert not info.value.permanent and info.value.retry_after == 2.0


def test_web_push_rejects_a_token_that_is_not_a_subscription(web_push):
    with pytest.raises(ProviderError) as info:
        _webpush(web_push).send(_push("not-json", platform="web"))
    assert info.value.permanent


@pytest.mark.parametrize("form", ["pem-text", "pem-file"])
def test_web_push_takes_the_vapid_key_as_pem_text_or_file(web_push, tmp_path, form):
    from cryptography.hazmat.primitives import serialization
    from py_vapid import Vapid

    vapid = Vapid.from_string(web_push.vapid_private_key)
    pem = vapid.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()
    key = pem
    if form == "pem-file":
        (tmp_path / "vapid.pem").write_text(pem)
        key = str(tmp_path / "vapid.pem")
    WebPushProvider(private_key=key, subject="mailto:ops@example.com", allow_private=True).send(
        _push(web_push.subscribe(), platform="web"))
    assert len(web_push.delivered) == 1

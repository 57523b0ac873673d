"""Twilio SMS provider against a fake Twilio REST API on 127.0.0.1."""
import base64

import pytest

from notifier.channels.base import Message, ProviderError
from notifier.channels.sms import TwilioSmsProvider
from tests.peers import Reply

CALLBACK = "http://127.0.0.1:8000/api/v1/webhooks/twilio/status/"


def _provider(peer, **extra):
    return TwilioSmsProvider(account_sid=peer.account_sid, auth_token=peer.auth_token, from_number="+15005550006",
                             api_base_url=peer.url, status_callback=CALLBACK, timeout=1.0, **extra)


def _sms(to="+12025550123", body="Your code is 123456"):
    return Message(notification_id="n-1", channel="sms", to=to, body=body)


def test_it_posts_to_from_body_and_status_callback_with_basic_auth(fake_twilio):
    sid = _provider(fake_twilio).send(_sms())

    [request] = fake_twilio.messages
    assert request.path == f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    expected = base64.b64encode(f"{fake_twilio.account_sid}:{fake_twilio.auth_token}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert request.form["To"] == ["+12025550123"]
    assert request.form["From"] == ["+15005550006"]
    assert request.form["Body"] == ["Your code is 123456"]
    assert request.form["StatusCallback"] == [CALLBACK]
    assert sid == fake_twilio.sids[0] and sid.startswith("SM")


def test_it_fails_permanently_and_suppresses_on_21211(fake_twilio):
    fake_twilio.invalid_numbers.add("+12025550999")
    with pytest.raises(ProviderError) as info:
        _provider(fake_twilio).send(_sms(to="+12025550999"))
    assert info.value.permanent
    assert info.value.code == "21211"
    assert info.value.suppress == "invalid_number"


def test_it_treats_21614_as_invalid_number(fake_twilio):
    fake_twilio.script(Reply(400, {"code": 21614, "message": "'To' number is not a valid mobile number",
                                   "status": 400}))
    with pytest.raises(ProviderError) as info:
        _provider(fake_twilio).send(_sms())
    assert info.value.permanent and info.value.suppress == "invalid_number"


def test_it_treats_other_4xx_as_permanent_without_suppressing(fake_twilio):
    fake_twilio.script(Reply(400, {"code": 21602, "message": "Message body is required.", "status": 400}))
    with pytest.raises(ProviderError) as info:
        _provider(fake_twilio).send(_sms())
    assert info.value.permanent and not info.value.suppress


def test_it_retries_429_honouring_retry_after(fake_twilio):
    fake_twilio.script(Reply(429, {"code": 20429, "message": "Too Many Requests", "status": 429},
                             headers={"Retry-After": "7"}))
    with pytest.raises(ProviderError) as info:
        _provider(fake_twilio).send(_sms())
    assert not info.value.permanent
    assert info.value.retry_after == 7.0


def test_it_treats_5xx_as_transient(fake_twilio):
    fake_twilio.script(Reply(503, {"code": 20503, "message": "Service Unavailable", "status": 503}))
    with pytest.raises(ProviderError) as info:
        _provider(fake_twilio).send(_sms())
    assert not info.value.permanent


def test_it_treats_a_timeout_as_transient(fake_twilio):
    fake_twilio.script(Reply(201, {"sid": "SMlate"}, delay=2.5))
    with pytest.raises(ProviderError) as info:
        _provider(fake_twilio).send(_sms())
    assert not info.value.permanent
    assert "timeout" in str(info.value).lower()


def test_it_treats_connection_refused_as_transient():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = TwilioSmsProvider(account_sid="AC" + "1" * 32, auth_token="x", from_number="+15005550006",
                                 api_base_url=f"http://127.0.0.1:{port}", timeout=1.0)
    with pytest.raises(ProviderError) as info:
        provider.send(_sms())
    assert not info.value.permanent


def test_it_sends_a_chunk_concurrently_and_keeps_order(fake_twilio):
    fake_twilio.invalid_numbers.add("+12025550003")
    messages = [_sms(to=f"+1202555000{i}") for i in range(6)]
    results = _provider(fake_twilio, concurrency=4).send_many(messages)

    assert [isinstance(r, ProviderError) for r in results] == [False, False, False, True, False, False]
    sent_to = sorted(r.form["To"][0] for r in fake_twilio.messages)
    assert sent_to == sorted(m.to for m in messages)

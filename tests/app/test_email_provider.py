"""SMTP provider against an SMTP server started by the test."""
import pytest

from notifier.channels.base import Message, ProviderError
from notifier.channels.email import SmtpEmailProvider, classify_smtp_error, is_hard_bounce
from notifier.unsubscribe import read_token


def _provider(sink, **extra):
    return SmtpEmailProvider(host="127.0.0.1", port=sink.port, from_email="notifier@example.com", timeout=2,
                             public_url="https://notify.example.com", **extra)


def _mail(**extra):
    fields = {"notification_id": "0190b6c2-0000-7000-8000-000000000001", "channel": "email",
              "to": "alice@example.com", "subject": "Your receipt", "body": "Thanks for your order.",
              "html": "<p>Thanks for your <b>order</b>.</p>", **extra}
    return Message(**fields)


def test_it_sends_multipart_text_and_html_with_the_right_headers(smtp_sink):
    message_id = _provider(smtp_sink).send(_mail(allow_unsubscribe=True))

    [received] = smtp_sink.messages
    assert received["Subject"] == "Your receipt"
    assert received["From"] == "notifier@example.com"
    assert received["To"] == "alice@example.com"
    assert received["Message-ID"] == message_id
    assert received["X-Notifier-Id"] == "0190b6c2-0000-7000-8000-000000000001"
    assert received.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part.get_content().strip() for part in received.iter_parts()}
    assert parts == {"text/plain": "Thanks for your order.", "text/html": "<p>Thanks for your <b>order</b>.</p>"}
    unsubscribe = str(received["List-Unsubscribe"]).strip()  # long headers are folded
    assert unsubscribe.startswith("<https://notify.example.com/unsubscribe/") and unsubscribe.endswith("/>")
    token = unsubscribe[len("<https://notify.example.com/unsubscribe/"):-2]
    assert read_token(token) == "0190b6c2-0000-7000-8000-000000000001"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_it_sends_plain_text_only_without_html_and_no_unsubscribe_for_categories_without_opt_out(smtp_sink):
    _provider(smtp_sink).send(_mail(html="", allow_unsubscribe=False))

    [received] = smtp_sink.messages
    assert received.get_content_type() == "text/plain"
    assert received["List-Unsubscribe"] is None


def test_it_adds_a_mailto_unsubscribe_when_configured(smtp_sink):
    _provider(smtp_sink, unsubscribe_mailto="unsubscribe@example.com").send(_mail(allow_unsubscribe=True))
    assert "<mailto:unsubscribe@example.com?subject=unsubscribe%20" in smtp_sink.messages[0]["List-Unsubscribe"]


def test_a_4xx_reply_is_transient(smtp_sink):
    smtp_sink.fail_next(1, "451 4.3.0 Try again later")
    with pytest.raises(ProviderError) as info:
        _provider(smtp_sink).send(_mail())
    assert not info.value.permanent


def test_a_5xx_recipient_refusal_is_a_permanent_hard_bounce(smtp_sink):
    smtp_sink.reject_rcpt("550 5.1.1 No such user")
    with pytest.raises(ProviderError) as info:
        _provider(smtp_sink).send(_mail())
    assert info.value.permanent
    assert info.value.suppress == "hard_bounce"


def test_a_5xx_content_rejection_is_permanent_but_not_a_bounce(smtp_sink):
    smtp_sink.fail_next(1, "554 5.7.1 Message rejected as spam")
    with pytest.raises(ProviderError) as info:
        _provider(smtp_sink).send(_mail())
    assert info.value.permanent and not info.value.suppress


def test_a_relay_that_is_down_fails_the_whole_chunk_transiently_with_one_connection_attempt():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = SmtpEmailProvider(host="127.0.0.1", port=port, from_email="n@example.com", timeout=1)
    results = provider.send_many([_mail(), _mail(), _mail()])
    assert all(isinstance(r, ProviderError) and not r.permanent for r in results)


def test_one_connection_carries_a_chunk_and_a_refused_recipient_does_not_stop_the_rest(smtp_sink):
    provider = _provider(smtp_sink)
    results = provider.send_many([_mail(to=f"user{i}@example.com") for i in range(4)])
    assert all(isinstance(r, str) for r in results)
    assert sorted(m["To"] for m in smtp_sink.messages) == [f"user{i}@example.com" for i in range(4)]


@pytest.mark.parametrize("code,text,bounce", [
    (550, "5.1.1 No such user", True),
    (553, "mailbox name not allowed", True),
    (550, "5.7.1 Relaying denied", False),
    (552, "5.2.2 Mailbox full", False),
    (450, "4.2.1 Mailbox busy", False),
])
def test_hard_bounces_are_5xx_refusals_of_the_address(code, text, bounce):
    assert is_hard_bounce(code, text) is bounce


def test_connection_errors_classify_as_transient():
    assert not classify_smtp_error(ConnectionRefusedError("refused")).permanent
    assert not classify_smtp_error(TimeoutError("timed out")).permanent


def test_a_chunk_goes_over_several_smtp_sessions_at_once_and_its_results_keep_their_order(smtp_sink):
    smtp_sink.delay = 0.2  # a slow relay: the sessions overlap
    provider = _provider(smtp_sink, connections=4)
    mails = [_mail(to=f"user{i}@example.com", notification_id=f"id-{i}") for i in range(10)]

    results = provider.send_many(mails)

    assert all(isinstance(r, str) for r in results)
    by_id = {m["X-Notifier-Id"]: m["Message-ID"] for m in smtp_sink.messages}
    assert [by_id[f"id-{i}"] for i in range(10)] == results  # each result is its own message's
    assert smtp_sink.peak_sessions > 1
    provider.close()


@pytest.mark.parametrize("connections", [1, 4])
def test_a_soft_time_limit_during_an_smtp_send_is_raised_not_recorded_as_a_transient_error(smtp_sink, connections):
    """Celery's soft time limit (SIGUSR1 in the worker, raising SoftTimeLimitExceeded wherever the
    task is) was classified as one more SMTP error, and the task ran on until the hard limit."""
    import signal
    import threading

    from celery.exceptions import SoftTimeLimitExceeded

    from notifier.channels.failover import send_with_failover

    def soft_limit(signum, frame):
        raise SoftTimeLimitExceeded()

    main = threading.get_ident()
    once = threading.Lock()  # one signal only: a later one, after the handler is restored, would kill pytest

    def interrupt(message):  # mid-chunk
        if once.acquire(blocking=False):
            signal.pthread_kill(main, signal.SIGUSR1)

    smtp_sink.on_message = interrupt
    previous = signal.signal(signal.SIGUSR1, soft_limit)
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            send_with_failover([_provider(smtp_sink, connections=connections)],
                               [_mail(to=f"user{i}@example.com") for i in range(5)])
    finally:
        signal.signal(signal.SIGUSR1, previous)
    if connections == 1:
        assert len(smtp_sink.messages) == 1  # it stopped at once

"""deliver_chunk with SMTP relays that are down: failover, then circuit waits that spend no retries."""
import socket

import pytest
from django.utils import timezone

from apps.notifications.delivery.worker import deliver_chunk
from apps.notifications.models import Notification
from notifier import circuit
from notifier.channels.registry import providers_for

pytestmark = pytest.mark.django_db


def _dead_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def relays(settings):
    """Configure smtp and smtp2; returns a function taking their ports."""
    def configure(port1, port2, threshold=1, cooldown=60):
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port1, 1
        settings.NOTIFIER_SMTP_RELAYS = {"smtp2": {"host": "127.0.0.1", "port": port2, "username": "", "password": "",
                                                   "use_tls": False, "use_ssl": False, "timeout": 1}}
        settings.NOTIFIER_PROVIDERS = {**settings.NOTIFIER_PROVIDERS, "email": ["smtp", "smtp2"]}
        settings.NOTIFIER_CIRCUIT_THRESHOLD = threshold
        settings.NOTIFIER_CIRCUIT_COOLDOWN = cooldown
        providers_for.cache_clear()
        circuit.reset_breaker()
    return configure


def _queued(n=1):
    now = timezone.now()
    return [Notification.objects.create(channel="email", to=f"u{i}@example.com",
                                        content={"subject": "s", "body": "b"},
                                        status="queued", created_at=now, updated_at=now, queued_at=now)
            for i in range(n)]


def _due_again(rows):
    Notification.objects.filter(id__in=[r.id for r in rows]).update(next_attempt_at=None)


def test_with_the_first_relay_down_mail_goes_out_through_the_second(relays, smtp_sink):
    relays(_dead_port(), smtp_sink.port, threshold=5)
    [n] = _queued()
    assert deliver_chunk([n.id]) == {"sent": 1}
    n.refresh_from_db()
    assert n.provider == "smtp2" and n.attempts == 1
    detail = n.events.get(status="sent").detail
    assert detail.startswith("smtp: SMTP connection error") and detail.endswith("smtp2: accepted")
    assert len(smtp_sink.messages) == 1


def test_with_every_relay_down_the_breakers_open_and_retries_stop_burning(relays):
    relays(_dead_port(), _dead_port(), threshold=1, cooldown=60)
    rows = _queued(3)
    ids = [r.id for r in rows]
    assert deliver_chunk(ids) == {"queued": 3}  # a real attempt: both relays refused
    assert {s["provider"]: s["state"] for s in circuit.states() if s["channel"] == "email"} == {"smtp": "open", "smtp2": "open"}

    for _ in range(5):  # more rounds than the retry budget
        _due_again(rows)
        assert deliver_chunk(ids) == {"queued": 3}
    for n in Notification.objects.filter(id__in=ids):
        assert n.attempts == 1
        assert n.status == "queued"
        half_open_at = min(s["opened_until"] for s in circuit.states() if s["channel"] == "email")
        assert abs(n.next_attempt_at.timestamp() - half_open_at) < 1
        assert "waiting for an open circuit" in n.events.order_by("-at", "-id").first().detail


def test_when_a_relay_returns_after_the_cooldown_a_probe_lets_mail_flow(relays, smtp_sink):
    down = _dead_port()
    relays(down, smtp_sink.port, threshold=1, cooldown=1)
    smtp_sink.fail_always("421 4.3.2 Service not available")
    rows = _queued(3)
    ids = [r.id for r in rows]
    deliver_chunk(ids)
    _due_again(rows)
    assert deliver_chunk(ids) == {"queued": 3}  # circuit wait
    smtp_sink.heal()
    import time

    time.sleep(1.2)  # the cool-down passes: half-open
    _due_again(rows)
    assert deliver_chunk(ids) == {"sent": 3}
    assert {n.attempts for n in Notification.objects.filter(id__in=ids)} == {2}
    assert {s["provider"]: s["state"] for s in circuit.states() if s["channel"] == "email"}["smtp2"] == "closed"


# A client's malformed input is permanent and never a breaker's business (issue 22, item 4) ------

# An address the API accepts (Django's validator takes any character from U+00A1 up in a domain) but
# whose domain does not encode to IDNA, so Django's SMTP backend raises UnicodeError writing it out:
# a mis-decoded "münchen", and a label that only outgrows 63 characters once punycoded.
UNENCODABLE = ["bob@m\ufffdnchen.de", "bob@" + "\u00e9" * 60 + ".com"]


def test_malformed_messages_fail_at_once_and_never_open_the_breaker_so_good_mail_still_goes_out(
        settings, smtp_sink, api):
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", smtp_sink.port, 2
    settings.NOTIFIER_PROVIDERS = {**settings.NOTIFIER_PROVIDERS, "email": ["smtp"]}
    settings.NOTIFIER_CIRCUIT_THRESHOLD, settings.NOTIFIER_CIRCUIT_COOLDOWN = 2, 60
    providers_for.cache_clear()
    circuit.reset_breaker()

    def post(to):
        response = api.post("/api/v1/notifications/email/", {"to": to, "subject": "s", "body": "b"}, format="json")
        assert response.status_code == 202, response.content  # it gets past the API
        return response.json()["id"]

    bad = [post(to) for to in UNENCODABLE * 2]  # twice the threshold
    good = post("alice@example.com")
    for notification_id in bad:  # one provider call each: each would count on its own
        assert deliver_chunk([notification_id]) == {"failed": 1}
    assert deliver_chunk([good]) == {"sent": 1}

    for n in Notification.objects.filter(id__in=bad):
        assert n.status == "failed" and n.attempts == 1 and n.next_attempt_at is None
        assert "UnicodeError" in n.last_error and "(permanent)" in n.last_error
    [state] = [s for s in circuit.states() if s["channel"] == "email"]
    assert state["state"] == "closed" and state["failures"] == 0 and state["times_opened"] == 0
    assert Notification.objects.get(id=good).status == "sent"
    assert [m["To"] for m in smtp_sink.messages] == ["alice@example.com"]

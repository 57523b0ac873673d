"""`manage.py replay`: failed notifications whose address is on the suppression list are skipped and
counted, or with --unsuppress their entries are lifted and they are requeued (real PostgreSQL; the
publish after commit does not run inside these tests' transactions; delivery is covered by
tests/integration/test_retries_and_dead_letters.py)."""
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.notifications.intake.create import notifications_create
from apps.notifications.models import Notification, Status
from apps.notifications.specs import NotificationSpec
from apps.providers.models import Suppression
from apps.providers.services import SuppressionInput, suppressions_record
from apps.recipients.models import Recipient

pytestmark = pytest.mark.django_db

SKIPPED = "skipped: address on the suppression list (use --unsuppress to lift the entry and send)."
OPTED_OUT = ("skipped: the recipient opted out (unsubscribed, or STOP at the carrier); "
             "--unsuppress does not lift an opt-out.")


def _failed(channel="email", category="transactional", **spec):
    content = {"title": "t", "body": "b"} if channel == "push" else (
        {"body": "b"} if channel == "sms" else {"subject": "s", "body": "b"})
    [n] = notifications_create(specs=[NotificationSpec(channel=channel, category=category, priority="normal",
                                                       content={**content, **spec.pop("content", {})}, **spec)])
    Notification.objects.filter(pk=n.pk).update(status=Status.FAILED, attempts=1, last_error="550 5.1.1 No such user")
    return n


def _suppress(channel, address, reason="hard_bounce", category=""):
    suppressions_record(items=[SuppressionInput(channel=channel, address=address, reason=reason, category=category)])


def _replay(capsys, *args):
    call_command("replay", "--status", "failed", *args)
    return capsys.readouterr().out


def _statuses(*notifications):
    return [Notification.objects.get(pk=n.pk).status for n in notifications]


@pytest.fixture
def failed():
    """Three failed notifications stopped by the suppression list (email, a recipient's phone, a push
    token) and two that are not (a clean address; an unsubscribe from another category)."""
    phone_owner = Recipient.objects.create(external_id="u1", phone="+12025550123")
    stopped = [
        _failed(to="bounced@example.com"),
        _failed(channel="sms", recipient=phone_owner),
        _failed(channel="push", content={"device_tokens": ["dead-token"]}),
    ]
    free = [_failed(to="fine@example.com"), _failed(to="bob@example.com")]
    _suppress("email", "Bounced@Example.com")
    _suppress("sms", "+12025550123", reason="invalid_number")
    _suppress("push", "dead-token", reason="unregistered_device")
    _suppress("email", "bob@example.com", reason="unsubscribed", category="marketing")
    return stopped, free


def test_replay_skips_and_counts_failed_notifications_whose_address_is_suppressed(capsys, failed):
    stopped, free = failed
    out = _replay(capsys)

    assert f"3 {SKIPPED}" in out
    assert "Requeued 2 failed notification(s)." in out
    assert all(f"skip {n.id}" in out for n in stopped)
    assert f"skip {stopped[0].id} channel=email: suppressed (hard bounce since " in out
    assert _statuses(*stopped) == [Status.FAILED] * 3
    assert _statuses(*free) == [Status.QUEUED] * 2
    assert Suppression.objects.count() == 4


def test_a_dry_run_shows_the_skip_count_and_changes_nothing(capsys, failed):
    stopped, free = failed
    out = _replay(capsys, "--dry-run")
    assert f"3 {SKIPPED}" in out
    assert "Dry run: 2 failed notification(s) would be requeued; nothing changed." in out
    assert all(f"would skip {n.id}" in out for n in stopped)

    out = _replay(capsys, "--dry-run", "--unsuppress")
    assert "Dry run: 3 suppression entries would be lifted." in out
    assert "Dry run: 5 failed notification(s) would be requeued; nothing changed." in out
    assert SKIPPED not in out
    assert _statuses(*stopped, *free) == [Status.FAILED] * 5
    assert Suppression.objects.count() == 4


def test_unsuppress_lifts_the_entries_that_stop_a_notification_and_requeues_it(capsys, failed):
    stopped, free = failed
    _suppress("email", "bounced@example.com", reason="manual", category="transactional")  # a second entry
    out = _replay(capsys, "--unsuppress")

    assert "Lifted 4 suppression entries." in out
    assert "Requeued 5 failed notification(s)." in out
    assert "skipped" not in out
    assert _statuses(*stopped, *free) == [Status.QUEUED] * 5
    assert list(Suppression.objects.values_list("reason", flat=True)) == ["unsubscribed"]  # another category's
    event = Notification.objects.get(pk=stopped[0].pk).events.order_by("-at", "-id").first()
    assert event.status == Status.QUEUED
    assert "replayed by manage.py replay --unsuppress (suppression lifted: " in event.detail
    assert "hard bounce" in event.detail


def test_unsuppress_never_lifts_an_opt_out(capsys):
    unsubscribed = _failed(to="carol@example.com", category="marketing")
    stopped_sms = _failed(channel="sms", to="+447911123456")
    _suppress("email", "carol@example.com", reason="unsubscribed", category="marketing")
    _suppress("sms", "+447911123456", reason="carrier_opt_out")

    for args in ((), ("--unsuppress",)):
        out = _replay(capsys, *args)
        assert f"2 {OPTED_OUT}" in out
        assert "Requeued 0 failed notification(s)." in out
    assert _statuses(unsubscribed, stopped_sms) == [Status.FAILED] * 2
    assert Suppression.objects.count() == 2


def test_the_suppression_list_is_read_in_one_query_for_all_the_rows_replayed(capsys):
    notifications = [_failed(to=f"user{i}@example.com") for i in range(30)]
    for n in notifications[::3]:
        _suppress("email", n.to)
    with CaptureQueriesContext(connection) as queries:
        out = _replay(capsys, "--dry-run")
    assert f"10 {SKIPPED}" in out
    assert sum("providers_suppression" in q["sql"] for q in queries.captured_queries) == 1



def test_a_recipients_suppressed_address_is_found_with_contact_fields_encrypted_at_rest(capsys, settings):
    from cryptography.fernet import Fernet

    settings.NOTIFIER_FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    recipient = Recipient.objects.create(external_id="u1", email="alice@example.com")
    notification = _failed(recipient=recipient)
    _suppress("email", "alice@example.com")
    assert f"1 {SKIPPED}" in _replay(capsys)
    assert _statuses(notification) == [Status.FAILED]

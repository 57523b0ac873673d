"""Result hooks (inbox entries, webhook events) run after the results' commit, from an outbox row: a hook
that fails never rolls back the results a provider accepted (which were then sent again), it is retried
from its row, and a row left behind by a process that died after the commit is run by the beat job
(issue 22). Real PostgreSQL, real commits, the SMTP sink as the relay; the failure is PostgreSQL's own
(a trigger refuses the fan-out's insert: ``webhook_inserts_fail``)."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.apikeys.models import Project
from apps.inbox.models import InboxState
from apps.notifications import resulthooks, tasks
from apps.notifications.delivery import worker
from apps.notifications.intake.create import notifications_create
from apps.notifications.models import Notification, NotificationEvent, ResultHookOutbox
from apps.notifications.specs import NotificationSpec
from apps.recipients.models import Recipient
from apps.webhooks import selectors
from apps.webhooks.services import webhook_endpoint_create
from tests.conftest import WEBHOOK_INSERTS_REFUSED as REFUSED
from tests.stack import Stack

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_subscriptions(settings):
    settings.NOTIFIER_WEBHOOK_ALLOW_PRIVATE = True
    selectors.clear_cache()
    yield
    selectors.clear_cache()


@pytest.fixture
def relay(settings, smtp_sink, purge_queues):
    settings.EMAIL_PORT = smtp_sink.port
    return smtp_sink


def _emails(count: int) -> list[str]:
    specs = [NotificationSpec(channel="email", category="transactional", priority="normal", to=f"user{i}@example.com",
                              content={"subject": f"s{i}", "body": "b"}) for i in range(count)]
    return [str(n.id) for n in notifications_create(specs=specs)]


def _in_app(count: int, recipient: Recipient) -> list[str]:
    specs = [NotificationSpec(channel="in_app", category="transactional", priority="normal", recipient=recipient,
                              content={"title": f"t{i}", "body": "b"}) for i in range(count)]
    return [str(n.id) for n in notifications_create(specs=specs)]


def _webhook_events() -> list[dict]:
    return [json.loads(n.content["body"]) for n in Notification.objects.filter(channel="webhook").order_by("id")]


def test_a_failing_result_hook_leaves_the_sent_results_recorded_and_nothing_is_sent_twice(
        relay, webhook_inserts_fail):
    endpoint = webhook_endpoint_create(url="http://127.0.0.1:9/hook", events=["notification.sent"])
    ids = _emails(5)

    assert worker.deliver_chunk(ids) == {"sent": 5}

    # The provider accepted them and that is recorded, though the webhook fan-out failed.
    assert set(Notification.objects.filter(id__in=ids).values_list("status", flat=True)) == {"sent"}
    for notification_id in ids:
        assert [e for e, in NotificationEvent.objects.filter(notification_id=notification_id)
                .values_list("status")] == ["queued", "sending", "sent"]
    assert sorted(m["X-Notifier-Id"] for m in relay.messages) == sorted(ids)
    assert not Notification.objects.filter(channel="webhook").exists()
    [row] = ResultHookOutbox.objects.all()
    assert row.hook == "apps.webhooks.hooks" and row.attempts == 1 and row.dead_at is None
    assert REFUSED in row.last_error
    assert row.next_attempt_at > timezone.now()  # a back-off, for the beat job

    # The chunk's message delivered again: nothing left to claim, nothing sent again.
    assert worker.deliver_chunk(ids) == {}
    assert len(relay.messages) == 5

    # The fan-out works again: the beat job's retry makes the events, once.
    webhook_inserts_fail.repair()
    assert resulthooks.run_due(now=timezone.now() + timedelta(minutes=1)) == {"ran": 1, "failed": 0}
    events = _webhook_events()
    assert sorted(e["data"]["id"] for e in events) == sorted(ids)
    assert {(e["type"], e["data"]["status"], e["data"]["attempts"]) for e in events} == {
        ("notification.sent", "sent", 1)}
    assert {n.to for n in Notification.objects.filter(channel="webhook")} == {str(endpoint.id)}
    assert not ResultHookOutbox.objects.exists()
    assert resulthooks.run_due(now=timezone.now() + timedelta(hours=1)) == {"ran": 0, "failed": 0}
    assert len(_webhook_events()) == 5 and len(relay.messages) == 5


def test_a_result_hook_that_keeps_failing_backs_off_then_is_dead_in_the_admin_which_runs_it_again(
        relay, webhook_inserts_fail, settings, client, caplog):
    settings.NOTIFIER_RESULT_HOOK_MAX_ATTEMPTS = 3
    webhook_endpoint_create(url="http://127.0.0.1:9/hook", events=["notification.sent"])
    ids = _emails(2)
    start = timezone.now()

    worker.deliver_chunk(ids)  # attempt 1, by the worker right after its commit
    first = ResultHookOutbox.objects.get()
    assert 3.5 <= (first.next_attempt_at - start).total_seconds() <= 10  # about 5 s
    assert resulthooks.run_due(now=start + timedelta(hours=1)) == {"ran": 0, "failed": 1}
    second = ResultHookOutbox.objects.get()
    assert second.attempts == 2
    assert (second.next_attempt_at - (start + timedelta(hours=1))).total_seconds() >= 7  # about 10 s: doubled
    with caplog.at_level(logging.ERROR, logger="apps.notifications.resulthooks"):
        assert resulthooks.run_due(now=start + timedelta(hours=2)) == {"ran": 0, "failed": 1}
    dead = ResultHookOutbox.objects.get()
    assert dead.attempts == 3 and dead.dead_at is not None and dead.next_attempt_at is None
    assert any("given up" in r.getMessage() for r in caplog.records)
    assert resulthooks.run_due(now=start + timedelta(days=30)) == {"ran": 0, "failed": 0}  # dead: left alone
    assert set(Notification.objects.filter(id__in=ids).values_list("status", flat=True)) == {"sent"}

    staff = get_user_model().objects.create_user("operator", "op@example.com", "pw-operator-123",
                                                 is_staff=True, is_superuser=True)
    client.force_login(staff)
    page = client.get("/admin/notifications/resulthookoutbox/?state=dead")
    assert page.status_code == 200 and REFUSED in page.content.decode()
    response = client.post("/admin/notifications/resulthookoutbox/",
                           {"action": "run_again", "_selected_action": [dead.pk]})
    assert response.status_code == 302
    webhook_inserts_fail.repair()
    assert tasks.result_hooks() == {"ran": 1, "failed": 0}
    assert sorted(e["data"]["id"] for e in _webhook_events()) == sorted(ids)


def test_hook_rows_left_behind_by_a_process_that_died_after_the_commit_are_run_by_the_beat_job(tmp_path, purge_queues):
    alice = Recipient.objects.create(external_id="alice")
    webhook_endpoint_create(url="http://127.0.0.1:9/hook", events=["notification.sent"])
    ids = _in_app(3, alice)
    stack = Stack(tmp_path)
    try:
        # A worker that records the results and dies right after the commit, before its hooks.
        died = stack.python(
            "import os\n"
            "from apps.notifications import resulthooks\nfrom apps.notifications.delivery import worker\n"
            "resulthooks.run = lambda ids: os._exit(9)\n"
            f"worker.deliver_chunk({ids!r})\n"
            "os._exit(0)\n",
            name="dies-after-commit", env={"NOTIFIER_WEBHOOK_ALLOW_PRIVATE": "1"})
        assert died.popen.wait(60) == 9, died.output()
    finally:
        stack.stop_all()
    assert set(Notification.objects.filter(id__in=ids).values_list("status", flat=True)) == {"sent"}
    assert not InboxState.objects.exists() and not Notification.objects.filter(channel="webhook").exists()
    assert sorted(ResultHookOutbox.objects.values_list("hook", "attempts")) == [
        ("apps.inbox.hooks", 0), ("apps.webhooks.hooks", 0)]

    # Not at once: a new row is left to its writer for GRACE seconds; then the beat job runs both. The beat
    # job is run as at the end of the grace (``run_due``'s clock) rather than waited for in real time.
    rows = list(ResultHookOutbox.objects.values_list("created_at", "next_attempt_at"))
    assert all(due == created + timedelta(seconds=resulthooks.GRACE) for created, due in rows), rows
    due = max(due for _, due in rows)
    assert tasks.result_hooks() == {"ran": 0, "failed": 0}
    assert resulthooks.run_due(now=due - timedelta(milliseconds=1)) == {"ran": 0, "failed": 0}
    assert resulthooks.run_due(now=due) == {"ran": 2, "failed": 0}
    inbox = InboxState.objects.filter(recipient=alice).values_list("notification_id", flat=True)
    assert sorted(str(i) for i in inbox) == sorted(ids)
    assert sorted(e["data"]["id"] for e in _webhook_events()) == sorted(ids)
    assert not ResultHookOutbox.objects.exists()


def test_results_no_hook_listens_to_write_no_outbox_row(settings, purge_queues):
    """The batch path with no in-app result and no endpoint of the notifications' project listening: the
    results are one write, and nothing is added to the outbox (another project's endpoint costs one
    read of the rows' project, as before)."""
    settings.NOTIFIER_PROVIDERS = {**settings.NOTIFIER_PROVIDERS, "email": ["null"]}
    ids = _emails(200)
    selectors.subscriptions()  # the endpoint table, cached by each process (reloaded every 5 s)
    with CaptureQueriesContext(connection) as queries:
        assert worker.deliver_chunk(ids) == {"sent": 200}
    # The suppression check, then BEGIN, the results' one statement, COMMIT (the claim goes through
    # psycopg's own cursor, not captured here). Nothing after the commit.
    sql = [q["sql"] for q in queries.captured_queries]
    assert len(sql) == 4 and sql[1:] == ["BEGIN", sql[2], "COMMIT"] and "unnest(" in sql[2], sql

    other = Project.objects.create(slug="other")
    endpoint = webhook_endpoint_create(url="http://127.0.0.1:9/hook", events=["notification.sent"])
    endpoint.project = other
    endpoint.save()
    selectors.clear_cache()
    ids = _emails(200)
    with CaptureQueriesContext(connection) as queries:
        assert worker.deliver_chunk(ids) == {"sent": 200}
    assert not any(ResultHookOutbox._meta.db_table in q["sql"] for q in queries.captured_queries)
    assert not ResultHookOutbox.objects.exists() and not Notification.objects.filter(channel="webhook").exists()

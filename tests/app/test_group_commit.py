"""Group commit of single creates (apps/notifications/groupcommit.py): concurrent requests share one
policy check, insert and publish, and each still gets its own, correct answer."""
import threading
import time

import pytest
from django.db import connection
from rest_framework import status
from rest_framework.test import APIClient

from apps.notifications import outbox, policy, store
from apps.notifications.intake import groupcommit
from apps.notifications.intake.tickets import Ticket
from apps.notifications.intake.items import validate_notification
from apps.notifications.models import Notification, NotificationEvent
from apps.providers.models import Suppression

pytestmark = pytest.mark.django_db(transaction=True)  # the committer's own connection must see the rows


def _post_concurrently(raw_key: str, bodies: list[dict]) -> list:
    """POST each body from its own thread, all released at once; the responses in order."""
    responses: list = [None] * len(bodies)
    start = threading.Barrier(len(bodies))

    def one(index: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        start.wait()
        try:
            responses[index] = client.post("/api/v1/notifications/email/", bodies[index], format="json")
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return responses


@pytest.fixture
def publishes(monkeypatch):
    """Record what the committer publishes (instead of publishing)."""
    calls: list[list] = []
    monkeypatch.setattr(outbox, "publish", lambda items, **options: calls.append(list(items)))
    return calls


def test_concurrent_requests_each_get_their_own_notification(api_key, publishes):
    bodies = [{"to": f"user{i}@example.com", "subject": f"s{i}", "body": f"b{i}"} for i in range(12)]
    responses = _post_concurrently(api_key.raw, bodies)
    for body, response in zip(bodies, responses):
        assert response.status_code == status.HTTP_202_ACCEPTED, response.content
        data = response.json()
        assert response["Location"] == f"/api/v1/notifications/{data['id']}/"
        row = Notification.objects.get(id=data["id"])  # committed before the 202
        assert (row.to, row.content["subject"], row.status, row.api_key_id) == \
            (body["to"], body["subject"], "queued", api_key.api_key.pk)
        assert data["status"] == "queued"
        assert list(NotificationEvent.objects.filter(notification=row).values_list("status", flat=True)) == ["queued"]
    published = [item_id for call in publishes for item_id, _ in call]
    assert sorted(map(str, published)) == sorted(r.json()["id"] for r in responses)
    assert len(publishes) <= len(bodies)  # groups share a publish


def test_a_suppressed_address_in_a_group_is_suppressed_alone(api_key, publishes):
    Suppression.objects.create(address="bounced@example.com", channel="email", reason="hard_bounce")
    bodies = [{"to": a, "subject": "s", "body": "b"}
              for a in ["ok1@example.com", "Bounced@example.com", "ok2@example.com", "ok3@example.com"]]
    responses = _post_concurrently(api_key.raw, bodies)
    statuses = [r.json()["status"] for r in responses]
    assert statuses == ["queued", "suppressed", "queued", "queued"]
    suppressed = Notification.objects.get(id=responses[1].json()["id"])
    assert suppressed.status == "suppressed"
    published = {str(i) for call in publishes for i, _ in call}
    assert responses[1].json()["id"] not in published
    assert {r.json()["id"] for i, r in enumerate(responses) if i != 1} <= published


def _ticket(api_key, to):
    spec = validate_notification(channel="email", data={"to": to, "subject": "s", "body": "b"})
    return Ticket([spec], api_key.api_key.pk)


def test_a_failing_insert_fails_only_the_request_it_belongs_to(api_key, publishes, monkeypatch):
    real_insert = store.insert_notifications

    def insert(*, specs, api_key_ids, now, **options):
        if any(s.to == "poison@example.com" for s in specs):
            raise RuntimeError("this row cannot be inserted")
        return real_insert(specs=specs, api_key_ids=api_key_ids, now=now, **options)

    monkeypatch.setattr(store, "insert_notifications", insert)
    tickets = [_ticket(api_key, to) for to in ["a@example.com", "poison@example.com", "b@example.com"]]
    groupcommit.create_group(tickets)
    assert isinstance(tickets[1].error, RuntimeError) and tickets[1].result is None
    for ticket in (tickets[0], tickets[2]):
        assert ticket.error is None
        [notification] = ticket.result
        assert Notification.objects.get(id=notification.id).to == ticket.specs[0].to
    assert Notification.objects.count() == 2
    assert sorted(str(i) for call in publishes for i, _ in call) == \
        sorted(str(t.result[0].id) for t in (tickets[0], tickets[2]))


def test_a_failing_policy_check_reruns_each_request_alone(api_key, monkeypatch):
    real = policy.at_acceptance
    published = []
    monkeypatch.setattr(outbox, "publish", lambda items, **options: published.extend(items))

    def at_acceptance(specs, now):
        if len(specs) > 1:
            raise RuntimeError("suppression list unreachable for the group")
        if specs[0].to == "poison@example.com":
            raise RuntimeError("unreachable for this one")
        return real(specs, now)

    monkeypatch.setattr(groupcommit.policy, "at_acceptance", at_acceptance)
    tickets = [_ticket(api_key, to) for to in ["a@example.com", "poison@example.com"]]
    groupcommit.create_group(tickets)
    assert tickets[0].error is None and tickets[0].result[0].status == "queued"
    assert isinstance(tickets[1].error, RuntimeError)
    assert [str(i) for i, _ in published] == [str(tickets[0].result[0].id)]


def test_a_committer_error_reaches_every_waiting_request_and_the_thread_lives_on(api_key, publishes, monkeypatch):
    committer = groupcommit.GroupCommitter(max_items=10, wait=10)
    spec = lambda to: validate_notification(channel="email", data={"to": to, "subject": "s", "body": "b"})  # noqa: E731
    monkeypatch.setattr(groupcommit, "create_group", lambda tickets: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        committer.submit([spec("a@example.com")], api_key.api_key)
    monkeypatch.undo()
    monkeypatch.setattr(outbox, "publish", lambda items, **options: None)
    [notification] = committer.submit([spec("b@example.com")], api_key.api_key)
    assert Notification.objects.get(id=notification.id).status == "queued"
    committer.stop()


def test_the_committer_health_checks_its_connection_only_after_a_pause(api_key, monkeypatch):
    """Django's health check (a round trip) before the first query of each group is skipped for a
    connection that served the previous group a moment ago, and made again after a pause."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    checks = []
    real = DatabaseWrapper.is_usable

    def is_usable(self):
        if threading.current_thread().name.startswith("notifier-group-commit"):
            checks.append(self.alias)
        return real(self)

    monkeypatch.setattr(DatabaseWrapper, "is_usable", is_usable)
    monkeypatch.setattr(outbox, "publish", lambda items, **options: None)
    spec = lambda to: validate_notification(channel="email", data={"to": to, "subject": "s", "body": "b"})  # noqa: E731
    committer = groupcommit.GroupCommitter(max_items=10, wait=10)
    try:
        committer.submit([spec("a@example.com")], api_key.api_key)  # opens the thread's connection
        committer.submit([spec("b@example.com")], api_key.api_key)
        assert checks == []
        monkeypatch.setattr(groupcommit, "_HEALTHY_FOR", 0.0)
        [notification] = committer.submit([spec("c@example.com")], api_key.api_key)
        assert checks == ["default"]
        assert Notification.objects.get(id=notification.id).status == "queued"
    finally:
        committer.stop()


def test_idempotent_requests_do_not_use_the_committer(api_key, monkeypatch):
    """They store their response in the transaction that inserts the rows."""
    monkeypatch.setattr(groupcommit.GroupCommitter, "submit", lambda *a, **k: pytest.fail("used the committer"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key.raw}")
    body = {"to": "a@example.com", "subject": "s", "body": "b"}
    first = client.post("/api/v1/notifications/email/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = client.post("/api/v1/notifications/email/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == again.status_code == status.HTTP_202_ACCEPTED
    assert first.json() == again.json()
    assert Notification.objects.count() == 1


def _single(raw_key: str, to: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    try:
        return client.post("/api/v1/notifications/email/", {"to": to, "subject": "s", "body": "b"}, format="json")
    finally:
        connection.close()


@pytest.fixture
def slow_broker(monkeypatch):
    """A broker that confirms only when the test says so; records what it confirmed."""
    release, confirmed = threading.Event(), []

    def publish(items):
        assert release.wait(10), "the test never released the broker"
        confirmed.extend(str(i) for i, _ in items)

    monkeypatch.setattr(outbox, "publish_deliveries", publish)
    yield release, confirmed
    release.set()
    outbox.publisher_drain()


def test_a_request_is_answered_once_committed_and_its_publish_follows(api_key, slow_broker):
    release, confirmed = slow_broker
    response = _single(api_key.raw, "ada@example.com")  # returns although the broker has not confirmed

    assert response.status_code == status.HTTP_202_ACCEPTED
    assert Notification.objects.get(id=response.json()["id"]).status == "queued"
    assert confirmed == []
    release.set()
    assert outbox.publisher_drain(timeout=10)
    assert confirmed == [response.json()["id"]]


def test_with_answer_after_confirm_a_request_waits_for_the_broker(api_key, slow_broker, settings):
    settings.NOTIFIER_ANSWER_AFTER_CONFIRM = True
    release, confirmed = slow_broker
    threading.Timer(0.3, release.set).start()

    response = _single(api_key.raw, "ada@example.com")

    assert response.status_code == status.HTTP_202_ACCEPTED
    assert confirmed == [response.json()["id"]]  # confirmed before the answer


def test_a_failed_publish_after_the_answer_leaves_the_row_due_for_the_dispatcher(api_key, monkeypatch):
    def broker_down(items):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(outbox, "publish_deliveries", broker_down)
    response = _single(api_key.raw, "ada@example.com")
    assert response.status_code == status.HTTP_202_ACCEPTED
    assert outbox.publisher_drain(timeout=10)

    row = Notification.objects.get(id=response.json()["id"])
    assert row.status == "queued" and row.next_attempt_at is not None  # the dispatcher publishes it


def test_a_web_process_that_exits_publishes_what_its_requests_left_to_publish(api_key, slow_broker):
    """gunicorn's worker_exit hook (config/gunicorn.py): the sweep would otherwise find these rows later."""
    import importlib

    gunicorn_config = importlib.import_module("config.gunicorn")
    release, confirmed = slow_broker
    response = _single(api_key.raw, "ada@example.com")
    assert response.status_code == status.HTTP_202_ACCEPTED and confirmed == []

    threading.Timer(0.3, release.set).start()
    gunicorn_config.worker_exit(server=None, worker=None)  # returns once the publish is confirmed

    assert confirmed == [response.json()["id"]]


def _group_sizes(monkeypatch) -> list[int]:
    """The number of requests in each group the committer creates (the groups are created as usual)."""
    sizes: list[int] = []
    real = groupcommit.create_group

    def create_group(tickets):
        sizes.append(len(tickets))
        return real(tickets)

    monkeypatch.setattr(groupcommit, "create_group", create_group)
    return sizes


def _submit_spaced(committer, api_key, addresses, spacing: float) -> list:
    """Submit one single per address, each from its own thread, ``spacing`` seconds apart; the notifications."""
    results: list = [None] * len(addresses)

    def one(index: int) -> None:
        spec = validate_notification(channel="email", data={"to": addresses[index], "subject": "s", "body": "b"})
        try:
            [results[index]] = committer.submit([spec], api_key.api_key)
        finally:
            connection.close()

    threads = []
    for index in range(len(addresses)):
        threads.append(threading.Thread(target=one, args=(index,)))
        threads[-1].start()
        time.sleep(spacing)
    for thread in threads:
        thread.join(30)
    return results


def test_under_load_requests_arriving_within_the_gather_window_share_one_group(api_key, publishes, monkeypatch):
    sizes = _group_sizes(monkeypatch)
    committer = groupcommit.GroupCommitter(max_items=100, wait=10, gather=1.0)
    try:
        committer._arrivals.per_second = 100.0  # the committer has been taking many requests a second
        committer._arrivals.last_take = time.monotonic()
        addresses = [f"load{i}@example.com" for i in range(5)]
        notifications = _submit_spaced(committer, api_key, addresses, spacing=0.05)
        assert sizes == [5]
        assert sorted(Notification.objects.get(id=n.id).to for n in notifications) == addresses
        assert len(publishes) == 1
    finally:
        committer.stop()


def test_the_committer_waits_only_under_load_and_never_past_the_window():
    committer = groupcommit.GroupCommitter(max_items=100, wait=10, gather=0.004)
    now = time.monotonic()
    committer._pending, committer._first_at = [object()], now - 0.001  # the oldest has waited 1 ms
    assert committer.gather_delay(now) == 0.0  # no rate yet: a process's first request goes at once
    arrivals = committer._arrivals
    arrivals.per_second, arrivals.last_take = 500.0, now - 0.003  # 500/s: 2 more expected in 4 ms
    assert committer.gather_delay(now) == pytest.approx(0.003)
    committer._first_at = now - 0.010  # it waited while the previous group was committed: no more
    assert committer.gather_delay(now) == 0.0
    committer._first_at = now
    arrivals.per_second = 200.0  # less than one more expected in the window: a trickle
    assert committer.gather_delay(now) == 0.0
    arrivals.per_second, arrivals.last_take = 500.0, now - 1.0  # busy once, idle for a second since
    assert committer.gather_delay(now) == 0.0
    committer._pending = []
    arrivals.last_take = now
    assert committer.gather_delay(now) == 0.0
    assert groupcommit.GroupCommitter(gather=0.0).gather_delay(now) == 0.0


def test_a_process_first_requests_are_not_held_back(api_key, publishes, monkeypatch):
    sizes = _group_sizes(monkeypatch)
    committer = groupcommit.GroupCommitter(max_items=100, wait=10, gather=30.0)  # a wait would time the test out
    try:
        notifications = _submit_spaced(committer, api_key, ["t1@example.com", "t2@example.com"], spacing=0.5)
        assert sizes == [1, 1]
        assert [Notification.objects.get(id=n.id).status for n in notifications] == ["queued"] * 2
    finally:
        committer.stop()

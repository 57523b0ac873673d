"""The worker's claim returns the columns delivery needs, decoded as the ORM would, and defers the rest."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.notifications import store
from apps.notifications.delivery import results as delivery_results
from apps.notifications.models import Notification, Status
from apps.notifications.selectors import notifications_load_deferred
from apps.notifications.specs import Result


def _create(api, n=3):
    ids = []
    for i in range(n):
        response = api.post("/api/v1/notifications/email/", {
            "to": f"user{i}@example.com", "subject": f"Grüße {i} ✓", "body": "b\n\"quoted\"", "html": "<p>é</p>",
            "metadata": {"order": i, "tags": ["a", "b"]}, "group_key": "g",
        }, format="json")
        ids.append(response.json()["id"])
    return ids


def _check_claim(ids):
    expected = {str(n.pk): n for n in Notification.objects.filter(pk__in=ids)}
    now = timezone.now()
    claimed = store.claim(ids, now)
    assert sorted(str(n.pk) for n in claimed) == sorted(ids)
    for n in claimed:
        before = expected[str(n.pk)]
        for column in store.CLAIM_COLUMNS:
            attname = Notification._meta.get_field(column).attname
            assert getattr(n, attname) == getattr(before, attname), column
        assert (n.status, n.claimed_at, n.updated_at, n.next_attempt_at) == (Status.SENDING, now, now, None)
        assert n.content["subject"].startswith("Grüße")
        assert {"metadata", "template", "group_key", "api_key_id"} <= n.get_deferred_fields()
        assert n._state.adding is False and n._state.db == "default"
    # What a result hook needs beyond the claim comes in one query, not one per row.
    with CaptureQueriesContext(connection) as queries:
        notifications_load_deferred(claimed, ("metadata",))
        assert sorted(n.metadata["order"] for n in claimed) == [0, 1, 2]
    assert len(queries) == 1
    assert store.claim(ids, now) == []  # claimed once


@pytest.mark.django_db
def test_a_claim_in_a_transaction_returns_the_columns_delivery_needs(api):
    _check_claim(_create(api))


@pytest.mark.django_db(transaction=True)
def test_a_claim_with_binary_rows_returns_the_columns_delivery_needs(api):
    _check_claim(_create(api))


def _deliver_results(claimed, status=Status.SENT):
    delivery_results.record_results([Result(n, status, provider="null", detail="accepted") for n in claimed])


@pytest.mark.django_db(transaction=True)
def test_results_find_their_rows_by_the_version_the_claim_wrote(api):
    ids = _create(api)
    claimed = store.claim(ids, timezone.now())
    assert all(isinstance(n.claim_tid, str) and n.claim_tid.startswith("(") for n in claimed)
    with CaptureQueriesContext(connection) as queries:
        _deliver_results(claimed)
    assert sum("::tid[]" in q["sql"] for q in queries) == 1
    assert not any("UPDATE" in q["sql"] and "::tid[]" not in q["sql"] for q in queries)  # no lookup by id
    for n in Notification.objects.filter(pk__in=ids):
        assert (n.status, n.attempts, n.provider) == (Status.SENT, 1, "null")
        assert [e.status for e in n.events.all()] == ["queued", "sending", "sent"]


@pytest.mark.django_db(transaction=True)
def test_a_row_whose_version_moved_since_its_claim_still_gets_its_result_once(api):
    ids = _create(api)
    claimed = store.claim(ids, timezone.now())
    # Another write to one row (an operator's edit, say) leaves its claimed version behind.
    Notification.objects.filter(pk=ids[1]).update(metadata={"edited": True})
    _deliver_results(claimed)
    rows = {str(n.pk): n for n in Notification.objects.filter(pk__in=ids)}
    assert {n.status for n in rows.values()} == {Status.SENT}
    assert all(n.attempts == 1 for n in rows.values())
    assert [e.status for e in rows[ids[1]].events.all()] == ["queued", "sending", "sent"]


@pytest.mark.django_db(transaction=True)
def test_a_result_for_a_row_no_longer_sending_leaves_the_row_alone(api):
    ids = _create(api, n=1)
    claimed = store.claim(ids, timezone.now())
    Notification.objects.filter(pk=ids[0]).update(status=Status.QUEUED)  # the sweep put it back
    _deliver_results(claimed)
    n = Notification.objects.get(pk=ids[0])
    assert (n.status, n.attempts) == (Status.QUEUED, 0)


@pytest.mark.django_db
def test_a_result_is_a_tid_scan_whatever_the_status_index_holds():
    """Looked up by id, the planner walked notif_status_idx over every `sending` entry ever made."""
    sql = ("EXPLAIN UPDATE notifications_notification AS n SET status = 'sent' "
           "FROM unnest(%s::uuid[], %s::tid[]) AS v(i, c) WHERE n.ctid = v.c AND n.id = v.i "
           "AND (n.status = 'sending') IS TRUE")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(sql, ["{00000000-0000-0000-0000-000000000001}", '{"(0,1)"}'])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Tid Scan" in plan and "notif_status_idx" not in plan


def _result_plan(claimed, *, as_sent: bool) -> str:
    """EXPLAIN of the statement ``record_results`` sends for ``claimed``: with the settings it is sent
    with (``as_sent``), or alone."""
    statements = []

    def capture(execute, sql, params, many, context):
        if "::tid[]" in sql:
            statements.append((sql, params))
            raise LookupError("captured")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture), pytest.raises(LookupError):
        _deliver_results(claimed)
    [(sql, params)] = statements
    parts = [part.strip() for part in sql.split(";") if part.strip()]
    [statement] = [part for part in parts if part.startswith("WITH")]
    settings = [part for part in parts if part.startswith("SET LOCAL") and part.endswith("= off")]
    resets = [part for part in parts if part.endswith("TO DEFAULT")]
    assert parts == [*settings, statement, *resets] and len(settings) == len(resets) == 3
    with connection.cursor() as cursor:
        for setting in settings if as_sent else ():
            cursor.execute(setting)
        cursor.execute("EXPLAIN " + statement, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        for reset in resets:
            cursor.execute(reset)
    return plan


@pytest.mark.django_db
def test_results_are_found_by_ctid_even_where_the_statistics_promise_no_sending_rows():
    """Analyzed while every row was `sent` (a new deployment, the benchmark after its clean-up), the
    planner read the table and joined each row against every result (quadratic in the chunk)."""
    from apps.apikeys.services import api_key_create
    from apps.notifications.intake.items import validate_notification

    key = api_key_create(name="plan").api_key

    def insert(n):
        specs = [validate_notification(channel="email", data={"to": f"u{i}@example.com", "subject": "s", "body": "b"})
                 for i in range(n)]
        return store.insert_notifications(specs=specs, api_key_ids=[key.pk] * n, now=timezone.now())

    insert(300)
    Notification.objects.update(status=Status.SENT)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE notifications_notification")
    claimed = store.claim([str(n.id) for n in insert(500)], timezone.now())
    assert len(claimed) == 500

    assert "Seq Scan on notifications_notification" in _result_plan(claimed, as_sent=False)  # the trap
    plan = _result_plan(claimed, as_sent=True)
    assert "Tid Scan on notifications_notification" in plan
    assert "Seq Scan on notifications_notification" not in plan and "Index Scan" not in plan

    _deliver_results(claimed)
    assert Notification.objects.filter(status=Status.SENT).count() == 800
    with connection.cursor() as cursor:  # the settings were put back
        cursor.execute("SELECT current_setting('enable_seqscan'), current_setting('enable_indexscan')")
        assert cursor.fetchone() == ("on", "on")

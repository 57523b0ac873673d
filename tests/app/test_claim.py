"""The worker's claim returns the columns delivery needs, decoded as the ORM would, and defers the rest."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.notifications import delivery
from apps.notifications.models import Notification, Status
from apps.notifications.selectors import notifications_load_deferred


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
    claimed = delivery.claim(ids, now)
    assert sorted(str(n.pk) for n in claimed) == sorted(ids)
    for n in claimed:
        before = expected[str(n.pk)]
        for column in delivery.CLAIM_COLUMNS:
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
    assert delivery.claim(ids, now) == []  # claimed once


@pytest.mark.django_db
def test_a_claim_in_a_transaction_returns_the_columns_delivery_needs(api):
    _check_claim(_create(api))


@pytest.mark.django_db(transaction=True)
def test_a_claim_with_binary_rows_returns_the_columns_delivery_needs(api):
    _check_claim(_create(api))

"""The notification tables write little per notification, and the lookups still find their indexes."""
import pytest
from django.db import connection
from django.utils import timezone

from apps.notifications.models import Notification, NotificationEvent
from apps.recipients.models import Recipient

pytestmark = pytest.mark.django_db


def _plan(queryset) -> str:
    """The plan PostgreSQL would use if the table were large (sequential scans discouraged)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        try:
            return queryset.explain()
        finally:
            cursor.execute("SET LOCAL enable_seqscan = on")


def _notification(**fields) -> Notification:
    now = timezone.now()
    return Notification.objects.create(channel=fields.pop("channel", "email"), created_at=now, updated_at=now,
                                       **fields)


def test_a_twilio_status_callback_finds_its_sms_by_message_sid_through_the_index():
    plan = _plan(Notification.objects.filter(provider_message_id="SM" + "a" * 32, channel="sms"))
    assert "notif_provider_msg_idx" in plan


def test_only_sms_message_ids_are_indexed():
    """Other channels' provider ids are never looked up: their rows skip the index on every result."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef('notif_provider_msg_idx'::regclass)")
        definition = cursor.fetchone()[0]
    assert "'sms'" in definition and "provider_message_id" in definition


def test_a_recipients_notifications_are_listed_through_the_recipient_index():
    plan = _plan(Notification.objects.filter(recipient_id=1).order_by("-id")[:50])
    assert "notif_recipient_idx" in plan


def test_rows_sent_to_a_direct_address_are_not_in_the_recipient_index():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef('notif_recipient_idx'::regclass)")
        assert "recipient_id IS NOT NULL" in cursor.fetchone()[0]


def test_event_rows_have_no_foreign_key_check_but_deleting_a_notification_deletes_its_events():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = %s::regclass",
            [NotificationEvent._meta.db_table])
        assert cursor.fetchone()[0] == 0
    recipient = Recipient.objects.create(external_id="hot-path")
    notification = _notification(recipient=recipient)
    NotificationEvent.objects.create(notification=notification, status="queued", at=timezone.now())

    notification.delete()

    assert not NotificationEvent.objects.filter(notification_id=notification.pk).exists()


def test_the_api_key_reference_has_no_foreign_key_check_but_deleting_a_key_clears_it():
    from apps.apikeys.models import ApiKey

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = %s::regclass "
            "AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attname = 'api_key_id')]", [Notification._meta.db_table] * 2)
        assert cursor.fetchone()[0] == 0
    assert "api_key_id" in _plan(Notification.objects.filter(api_key_id=1))  # still indexed
    key = ApiKey.objects.create(name="gone", prefix="gone1234", key_hash="x" * 64)
    notification = _notification(api_key=key)

    key.delete()

    notification.refresh_from_db()
    assert notification.api_key_id is None


def test_the_create_paths_recipient_lookup_finds_the_project_and_external_id_index():
    """One query per batch or group, keyed (project, external_id), as the unique index is."""
    from django.db.models import Q

    one = _plan(Recipient.objects.filter(project_id=1, external_id__in=["user-1", "user-2"]))
    assert "recipient_project_external_id" in one
    two = _plan(Recipient.objects.filter(Q(project_id=1, external_id__in=["user-1"]) |
                                         Q(project_id=2, external_id__in=["user-1"])))
    assert "recipient_project_external_id" in two


def test_the_project_column_has_no_foreign_key_check_and_no_index_of_its_own():
    """Every inserted notification would pay for either; reads find rows by id, recipient or group first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = %s::regclass "
            "AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attname = 'project_id')]", [Notification._meta.db_table] * 2)
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%project_id%%'",
                       [Notification._meta.db_table])
        assert cursor.fetchone()[0] == 0

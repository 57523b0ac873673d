"""Optional encryption at rest of Recipient.email/phone (NOTIFIER_FIELD_ENCRYPTION_KEY)."""
import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.db import connection

from apps.notifications.delivery.worker import deliver_chunk
from apps.notifications.models import Notification
from apps.recipients.models import Recipient

pytestmark = pytest.mark.django_db

EMAIL, PHONE = "alice@example.com", "+12025550123"


def _stored(external_id):
    with connection.cursor() as cursor:
        cursor.execute("SELECT email, phone FROM recipients_recipient WHERE external_id = %s", [external_id])
        return cursor.fetchone()


def test_without_a_key_contact_fields_are_stored_in_plain_text(settings):
    settings.NOTIFIER_FIELD_ENCRYPTION_KEY = ""
    Recipient.objects.create(external_id="u1", email=EMAIL, phone=PHONE)
    assert _stored("u1") == (EMAIL, PHONE)


def test_with_a_key_contact_fields_are_encrypted_at_rest_and_read_back(settings):
    settings.NOTIFIER_FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    Recipient.objects.create(external_id="u1", email=EMAIL, phone=PHONE)
    email, phone = _stored("u1")
    assert email.startswith("enc1:") and phone.startswith("enc1:")
    assert EMAIL not in email and PHONE not in phone
    recipient = Recipient.objects.get(external_id="u1")
    assert (recipient.email, recipient.phone) == (EMAIL, PHONE)
    assert list(Recipient.objects.values_list("email", flat=True)) == [EMAIL]


def test_keys_rotate_the_first_encrypts_and_all_decrypt(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.NOTIFIER_FIELD_ENCRYPTION_KEY = old
    Recipient.objects.create(external_id="u1", email=EMAIL)
    settings.NOTIFIER_FIELD_ENCRYPTION_KEY = f"{new},{old}"
    assert Recipient.objects.get(external_id="u1").email == EMAIL


def test_plain_rows_stay_readable_after_a_key_is_set(settings):
    settings.NOTIFIER_FIELD_ENCRYPTION_KEY = ""
    Recipient.objects.create(external_id="u1", email=EMAIL)
    settings.NOTIFIER_FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    assert Recipient.objects.get(external_id="u1").email == EMAIL


def test_a_malformed_key_fails_the_system_checks(settings):
    settings.NOTIFIER_FIELD_ENCRYPTION_KEY = "not-a-fernet-key"
    assert [e.id for e in run_checks(tags=["security"]) if e.id.startswith("notifier.")] == ["notifier.E001"]


def test_mail_to_a_recipient_with_an_encrypted_address_arrives(settings, api, smtp_sink):
    settings.NOTIFIER_FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    settings.EMAIL_PORT = smtp_sink.port
    Recipient.objects.create(external_id="u1", email=EMAIL)
    response = api.post("/api/v1/notifications/email/", {"recipient": "u1", "subject": "s", "body": "b"},
                        format="json")
    assert response.status_code == 202
    assert deliver_chunk([response.json()["id"]]) == {"sent": 1}
    assert [m["To"] for m in smtp_sink.messages] == [EMAIL]
    assert Notification.objects.get().status == "sent"

"""A delivery chunk's recipients in one query (apps.recipients.selectors.recipients_by_id): the same values
the ORM reads, encrypted fields decrypted, the timestamps deferred but still readable; on real PostgreSQL."""
from datetime import time

import pytest
from django.test import override_settings

from apps.recipients.models import Recipient
from apps.recipients.selectors import recipients_by_id

pytestmark = pytest.mark.django_db

KEY = "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA="  # a Fernet key (32 bytes of "0")


def test_recipients_by_id_reads_what_the_orm_reads():
    made = [Recipient.objects.create(external_id=f"r{i}", email=f"r{i}@example.com", phone="+12025550123",
                                     locale="fr", timezone="Europe/Paris", quiet_hours_start=time(22),
                                     quiet_hours_end=time(7)) for i in range(3)]
    found = recipients_by_id([r.pk for r in made] + [10**12])  # one that does not exist

    assert sorted(found) == sorted(r.pk for r in made)
    for recipient in made:
        loaded, orm = found[recipient.pk], Recipient.objects.get(pk=recipient.pk)
        for field in Recipient._meta.concrete_fields:
            assert getattr(loaded, field.attname) == getattr(orm, field.attname), field.attname
        assert loaded.quiet_hours == (time(22), time(7))
    assert recipients_by_id([]) == {}


def test_encrypted_addresses_come_back_decrypted():
    from django.db import connection

    with override_settings(NOTIFIER_FIELD_ENCRYPTION_KEY=KEY):
        recipient = Recipient.objects.create(external_id="secret", email="s@example.com", phone="+12025550123")
        with connection.cursor() as cursor:
            cursor.execute("SELECT email FROM recipients_recipient WHERE id = %s", [recipient.pk])
            assert cursor.fetchone()[0].startswith("enc1:")
        loaded = recipients_by_id([recipient.pk])[recipient.pk]
    assert (loaded.email, loaded.phone) == ("s@example.com", "+12025550123")

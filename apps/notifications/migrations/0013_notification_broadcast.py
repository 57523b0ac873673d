"""Notifications remember the broadcast they were made for (apps.broadcasts). A nullable column without
a default (no table rewrite) and a partial index of the rows that have one, built concurrently so that
writes go on while it is built."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('notifications', '0012_pendingpublish'),
    ]

    operations = [
        migrations.AddField(
            model_name='notification',
            name='broadcast_id',
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
        AddIndexConcurrently(
            model_name='notification',
            index=models.Index(condition=models.Q(('broadcast_id__isnull', False)), fields=['broadcast_id', 'status'], name='notif_broadcast_idx'),
        ),
    ]

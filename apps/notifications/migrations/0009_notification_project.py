"""Notifications get an owner. Existing rows belong to the `default` project: the column is added with
that project's id as a constant default (PostgreSQL 11+ does not rewrite the table for it), which is
then dropped; no foreign-key constraint and no index (see the model)."""

import apps.apikeys.models
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('apikeys', '0003_projects'),
        ('notifications', '0008_api_key_without_fk_check'),
    ]

    operations = [
        migrations.AddField(
            model_name='notification',
            name='project',
            field=models.ForeignKey(db_constraint=False, db_index=False, default=apps.apikeys.models.default_project_id, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='apikeys.project'),
        ),
    ]

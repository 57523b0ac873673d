"""Webhook endpoints get an owner (existing ones: the `default` project) and a channel filter (empty: all)."""

import apps.apikeys.models
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('apikeys', '0003_projects'),
        ('webhooks', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='webhookendpoint',
            name='channels',
            field=models.JSONField(blank=True, default=list, help_text="Events of notifications of these channels only (the registering key's allowed channels). Empty: every channel."),
        ),
        migrations.AddField(
            model_name='webhookendpoint',
            name='project',
            field=models.ForeignKey(default=apps.apikeys.models.default_project_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='apikeys.project'),
        ),
    ]

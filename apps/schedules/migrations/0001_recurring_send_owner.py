"""Recurring sends get an owner (project and channel); existing ones belong to the `default` project."""
import json

import apps.apikeys.models
import django.db.models.deletion
from django.db import migrations, models


def own_existing(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    Project = apps.get_model("apikeys", "Project")
    Owner = apps.get_model("schedules", "RecurringSendOwner")
    project, _ = Project.objects.get_or_create(slug="default", defaults={"name": "Default"})
    owners = []
    for pk, kwargs in PeriodicTask.objects.filter(task="notifier.send_recurring").values_list("pk", "kwargs"):
        try:
            channel = json.loads(kwargs or "{}").get("channel", "")
        except (ValueError, AttributeError):
            channel = ""
        owners.append(Owner(periodic_task_id=pk, project_id=project.pk,
                            channel=channel if isinstance(channel, str) else ""))
    Owner.objects.bulk_create(owners, ignore_conflicts=True)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('apikeys', '0003_projects'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
    ]

    operations = [
        migrations.CreateModel(
            name='RecurringSendOwner',
            fields=[
                ('periodic_task', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='notifier_owner', serialize=False, to='django_celery_beat.periodictask')),
                ('channel', models.CharField(blank=True, max_length=16)),
                ('project', models.ForeignKey(default=apps.apikeys.models.default_project_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='apikeys.project')),
            ],
            options={
                'verbose_name': 'recurring send owner',
            },
        ),
        migrations.RunPython(own_existing, migrations.RunPython.noop),
    ]

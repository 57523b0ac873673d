"""Projects: every API key belongs to one. Existing keys move into the `default` project.

The `default` project is made here; the migrations that give notifications, recipients, webhook
endpoints and recurring sends their `project` column depend on this one and fill it with the
`default` project's id (a constant column default: PostgreSQL 11+ adds such a column without
rewriting the table).
"""
import django.db.models.deletion
from django.db import migrations, models

import apps.apikeys.models


def create_default_project(apps, schema_editor):
    Project = apps.get_model("apikeys", "Project")
    Project.objects.get_or_create(slug="default", defaults={"name": "Default"})


class Migration(migrations.Migration):

    dependencies = [
        ("apikeys", "0002_apikey_rate_limits"),
    ]

    operations = [
        migrations.CreateModel(
            name="Project",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("slug", models.SlugField(max_length=64, unique=True)),
                ("name", models.CharField(blank=True, max_length=100)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["slug"],
            },
        ),
        migrations.RunPython(create_default_project, migrations.RunPython.noop),
        migrations.AddField(
            model_name="apikey",
            name="project",
            field=models.ForeignKey(default=apps.apikeys.models.default_project_id,
                                    help_text="The key sees and changes only this project's objects.",
                                    on_delete=django.db.models.deletion.PROTECT, related_name="api_keys",
                                    to="apikeys.project"),
        ),
    ]

from django.db import migrations


def create_defaults(apps, schema_editor):
    from apps.notifications.categories import ensure_default_categories

    ensure_default_categories(apps.get_model("notifications", "Category"))


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]

# Groups of committed notifications whose publish is not confirmed yet (issue 22, item 12).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0008_api_key_without_fk_check'),
    ]

    operations = [
        migrations.CreateModel(
            name='PendingPublish',
            fields=[
                ('id', models.UUIDField(primary_key=True, serialize=False)),
            ],
        ),
    ]

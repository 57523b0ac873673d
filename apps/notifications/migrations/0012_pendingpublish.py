# Groups of committed notifications whose publish is not confirmed yet (issue 22, item 12).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0011_result_hook_outbox'),
    ]

    operations = [
        migrations.CreateModel(
            name='PendingPublish',
            fields=[
                ('id', models.UUIDField(primary_key=True, serialize=False)),
            ],
        ),
    ]

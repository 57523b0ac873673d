# The webhook channel (apps.webhooks): choices only, no schema change.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0004_category_frequency_caps'),
    ]

    operations = [
        migrations.AlterField(
            model_name='notification',
            name='channel',
            field=models.CharField(choices=[('email', 'Email'), ('sms', 'Sms'), ('push', 'Push'), ('in_app', 'In App'), ('webhook', 'Webhook')], max_length=16),
        ),
    ]

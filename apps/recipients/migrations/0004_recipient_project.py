"""Recipients get an owner (existing ones: the `default` project); external ids are unique per project."""

import apps.apikeys.models
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('apikeys', '0003_projects'),
        ('recipients', '0003_encrypted_contact_fields'),
    ]

    operations = [
        migrations.AddField(
            model_name='recipient',
            name='project',
            field=models.ForeignKey(db_index=False, default=apps.apikeys.models.default_project_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='apikeys.project'),
        ),
        migrations.AlterField(
            model_name='recipient',
            name='external_id',
            field=models.CharField(max_length=255),
        ),
        migrations.AddConstraint(
            model_name='recipient',
            constraint=models.UniqueConstraint(fields=('project', 'external_id'), name='recipient_project_external_id'),
        ),
    ]

# Issue 10, decisions #78: a webhook event is inserted and marked processed (processed_at, which
# webhook_unprocessed_idx holds: not HOT) per message, so each of its indexes is written twice per
# message. The line's is the unique body constraint's prefix; received_at is read only after
# processed_at IS NULL (webhook_unprocessed_idx).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('whatsapp', '0009_template_param_fields'),
    ]

    operations = [
        migrations.AlterField(
            model_name='webhookevent',
            name='line',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='webhook_events', to='whatsapp.line'),
        ),
        migrations.AlterField(
            model_name='webhookevent',
            name='received_at',
            field=models.DateTimeField(auto_now_add=True),
        ),
    ]

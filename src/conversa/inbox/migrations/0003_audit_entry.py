# ConversationEvent → AuditEntry (issue 7): a rename that keeps every row; the unused "inbound" kind goes.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('contacts', '0001_initial'),
        ('inbox', '0002_interactive_menu'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameModel(old_name='ConversationEvent', new_name='AuditEntry'),
        migrations.AlterModelOptions(
            name='auditentry',
            options={'ordering': ['created_at', 'id'], 'verbose_name': 'audit entry', 'verbose_name_plural': 'audit entries'},
        ),
        migrations.AlterField(
            model_name='auditentry',
            name='conversation',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='audit_entries', to='inbox.conversation'),
        ),
        migrations.AlterField(
            model_name='auditentry',
            name='kind',
            field=models.CharField(choices=[('created', 'Created'), ('captured', 'Captured'), ('assigned', 'Assigned'), ('message_sent', 'Message sent'), ('identified', 'Contact identified'), ('contact_edited', 'Contact edited'), ('transferred', 'Transferred'), ('closed', 'Closed'), ('outbound_started', 'Outbound conversation started'), ('routed', 'Routed by the interactive menu')], max_length=30),
        ),
    ]

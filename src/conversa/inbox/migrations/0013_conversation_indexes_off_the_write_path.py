# Issue 10, decisions #78: every message updates its conversation (last_message_at, which indexes
# hold: no such update is HOT), so each index of the table is written per message. Dropped: the
# single-column indexes whose readers a composite index serves (campaign, agent), status's two (its
# only frequent reader alone, the menu sweep, gets a partial index of the menu's rows), and on
# PostgreSQL the `_like` twins of the customer's phone and user id (no prefix LIKE reads them).
# last_message_at keeps its own: search walks it backwards (27 ms without it at 100,000 rows: 197).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Django names them from the table and column (schema_editor._create_index_name, suffix "_like").
LIKE_TWINS = {
    "inbox_conversation_customer_phone_82ad5c6f_like": "customer_phone",
    "inbox_conversation_customer_user_id_b00d7012_like": "customer_user_id",
}


def drop_like_twins(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in LIKE_TWINS:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


def create_like_twins(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, column in LIKE_TWINS.items():
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON inbox_conversation ({column} varchar_pattern_ops)")


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0004_quick_reply_attachment'),
        ('inbox', '0012_live_report_and_inbox_indexes_statistics'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='conversation',
            name='agent',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='conversations', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='conversation',
            name='campaign',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='conversations', to='campaigns.campaign'),
        ),
        migrations.AlterField(
            model_name='conversation',
            name='status',
            field=models.CharField(choices=[('menu', 'In the menu'), ('new', 'New'), ('attended', 'Attended'), ('closed', 'Closed')], default='new', max_length=20),
        ),
        migrations.AddIndex(
            model_name='conversation',
            index=models.Index(condition=models.Q(('status', 'menu')), fields=['id'], name='conv_in_menu_idx'),
        ),
        migrations.RunPython(drop_like_twins, create_like_twins, elidable=False),
    ]

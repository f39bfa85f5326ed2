# Issue 9, decisions #70: the general inbox's partial index also holds `created_at` (the live
# report's waiting count and longest wait read it alone); the personal inbox's holds assigned rows
# only (so it is no path to `agent_id IS NULL`); PostgreSQL keeps statistics of status and agent
# together (the general inbox's `status = 'new' AND agent_id IS NULL`).

from django.db import migrations, models

# Without them the planner multiplies the two conditions' selectivities as if independent (2 % new
# x 2 % unassigned: ~25 rows expected of 1,000 at 100,000 conversations) and reads the general inbox
# through a bitmap of every waiting row and a sort, not the ordered range of its partial index.
CREATE_STATISTICS = (
    "CREATE STATISTICS IF NOT EXISTS conv_status_agent_stats (mcv) ON status, agent_id FROM inbox_conversation"
)
DROP_STATISTICS = "DROP STATISTICS IF EXISTS conv_status_agent_stats"


def create_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_STATISTICS)
        # Collected now, not at the next autovacuum (the sample is bounded: quick at any size).
        schema_editor.execute("ANALYZE inbox_conversation")


def drop_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_STATISTICS)


class Migration(migrations.Migration):

    dependencies = [
        ('inbox', '0011_conversation_notes'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='conversation',
            name='conv_new_by_campaign_idx',
        ),
        migrations.AddIndex(
            model_name='conversation',
            index=models.Index(condition=models.Q(('agent__isnull', True), ('status', 'new')), fields=['campaign', 'last_message_at', 'id'], include=('created_at',), name='conv_new_by_campaign_idx'),
        ),
        migrations.RemoveIndex(
            model_name='conversation',
            name='conv_open_by_agent_idx',
        ),
        migrations.AddIndex(
            model_name='conversation',
            index=models.Index(condition=models.Q(models.Q(('status', 'closed'), _negated=True), ('agent__isnull', False)), fields=['agent', 'last_message_at', 'id'], name='conv_open_by_agent_idx'),
        ),
        migrations.RunPython(create_statistics, drop_statistics),
    ]

# Contact search (issue 9): the btree that serves its order everywhere, and on PostgreSQL only a
# trigram GIN index for the substring match (pg_trgm; SQLite has no such index and scans).

from django.db import migrations, models

# The expressions Django's `icontains` compares on PostgreSQL: UPPER("column"::text) LIKE UPPER(%s).
TRIGRAM_INDEX = (
    "CREATE INDEX IF NOT EXISTS contact_search_trgm_idx ON contacts_contact USING gin ("
    "(UPPER(first_name::text)) gin_trgm_ops, (UPPER(last_name::text)) gin_trgm_ops, "
    "(UPPER(phone::text)) gin_trgm_ops, (UPPER(email::text)) gin_trgm_ops)"
)


def create_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(TRIGRAM_INDEX)


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS contact_search_trgm_idx")  # the extension stays


class Migration(migrations.Migration):

    dependencies = [
        ('contacts', '0001_initial'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='contact',
            index=models.Index(fields=['database', 'first_name', 'last_name', 'id'], name='contact_by_name_idx'),
        ),
        migrations.RunPython(create_trigram_index, drop_trigram_index, elidable=False),
    ]

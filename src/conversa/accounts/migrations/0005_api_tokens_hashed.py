"""API tokens move from DRF's authtoken table (keys in clear) to django-rest-knox's (SHA-512 digests).

Each live key is hashed exactly as knox hashes what a client presents, so clients keep working until
their token expires; then the old table, and every key in clear with it, is dropped.
"""

import hashlib
from datetime import UTC, timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

OLD_TABLE = "authtoken_token"


def hash_old_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return
    AuthToken = apps.get_model("knox", "AuthToken")
    lifetime = timedelta(hours=settings.CONVERSA_API_TOKEN_TTL_HOURS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {OLD_TABLE}")  # noqa: S608 (a constant)
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        if timezone.is_naive(created):  # SQLite keeps UTC without its offset
            created = created.replace(tzinfo=UTC)
        token = AuthToken.objects.create(digest=hashlib.sha512(key.encode("utf-8")).hexdigest(),
                                         token_key=key[:15], user_id=user_id, expiry=created + lifetime)
        AuthToken.objects.filter(pk=token.pk).update(created=created)
    schema_editor.execute(f"DROP TABLE {schema_editor.quote_name(OLD_TABLE)}")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_agent_socket_seen_at"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(hash_old_tokens, migrations.RunPython.noop)]

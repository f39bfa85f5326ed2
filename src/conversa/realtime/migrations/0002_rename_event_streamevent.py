from django.db import migrations


class Migration(migrations.Migration):
    """Event → StreamEvent (four things were called "event"). The table keeps its name, so the
    rename touches no data and no operator's dump settings."""

    dependencies = [
        ("realtime", "0001_initial"),
    ]

    operations = [
        # Pin the current table name first: the rename below then has no table to rename.
        migrations.AlterModelTable(name="event", table="realtime_event"),
        migrations.RenameModel(old_name="Event", new_name="StreamEvent"),
    ]

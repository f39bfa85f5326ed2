"""`manage.py import_contacts --database NAME --file PATH [--country AR] [--on-duplicate skip|update]
[--encoding utf-8] [--inline]`: the web page's import from a shell. Columns are matched by name;
without --inline the import is queued for the task workers (its page shows the progress)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from conversa.contacts import imports
from conversa.contacts.models import ContactDatabase, ContactImport
from conversa.contacts.selectors import import_progress
from conversa.core.errors import DomainError


class Command(BaseCommand):
    help = "Import a CSV or .xlsx file of contacts into a contact database."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--database", required=True, help="The contact database's name.")
        parser.add_argument("--file", required=True, help="A .csv or .xlsx file whose first row names the columns.")
        parser.add_argument("--country", default="", help="Country of numbers without a country code (ISO code).")
        parser.add_argument("--on-duplicate", default="skip", choices=["skip", "update"])
        parser.add_argument("--encoding", default="utf-8")
        parser.add_argument("--inline", action="store_true", help="Run it in this process and wait for the end.")

    def handle(self, *args: Any, database: str, file: str, country: str, on_duplicate: str, encoding: str,
               inline: bool, **options: Any) -> None:
        target = ContactDatabase.objects.filter(name=database).first()
        if target is None:
            raise CommandError(f"No contact database named {database!r}.")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No file at {file}.")
        try:
            with path.open("rb") as handle:
                started = imports.start_import(database=target, upload=File(handle, name=path.name),
                                               encoding=encoding, user=None)
            queued = imports.configure_import(contact_import=started, mapping=started.mapping,
                                              default_country=country or started.default_country,
                                              on_duplicate=on_duplicate, enqueue=not inline)
        except DomainError as exc:
            raise CommandError(f"{exc.field or 'file'}: {exc.message}") from exc
        if inline:
            imports.run_import(import_id=queued.pk)
        progress = import_progress(contact_import=ContactImport(pk=queued.pk))
        self.stdout.write(json.dumps({"import": queued.pk, **progress.as_json()}))

"""Background work of contacts: a file import runs in the task workers (contacts.imports)."""

from __future__ import annotations

from django_tasks import task

from conversa.contacts import imports


@task(queue_name="default")
def run_contact_import(import_id: int) -> str:
    """Run (or resume from its checkpoint) one import; safe to run again after a crash."""
    return imports.run_import(import_id=import_id)

"""Importing a file of contacts: upload (checked and stored), column mapping, and the run in a
background task, a batch at a time.

Each batch is one transaction: the contacts it creates or updates, the problems of its rows, its
counters and the checkpoint (`rows_done`). A run that dies (worker killed) loses at most the batch
it was writing; run again (the worker's sweep re-runs a dead worker's task), it skips the rows the
checkpoint counts. The unique phone per database makes even a fresh re-run of the same file
duplicate nobody. Queries: a handful per batch (lock, the batch's existing phones, one bulk insert,
one bulk update, one insert of problems, the checkpoint), never one per row."""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from conversa.contacts.fields import clean_values
from conversa.contacts.models import Contact, ContactDatabase, ContactImport, ContactImportProblem
from conversa.contacts.phones import InvalidPhone, country_choices, normalize_phone_in
from conversa.contacts.tabular import TableError, format_of, inspect_table, read_rows
from conversa.core.errors import InvalidInput

logger = logging.getLogger(__name__)

STANDARD_TARGETS = ("phone", "first_name", "last_name", "email")
SPENT_FILES_PER_SWEEP = 200
MAX_NAME = 100
# Header spellings matched to the standard columns (after lower-casing, accents and punctuation off).
SYNONYMS = {
    "phone": {"phone", "phone_number", "telephone", "mobile", "cell", "cellphone", "whatsapp", "telefono",
              "tel", "celular", "movil", "numero", "number"},
    "first_name": {"first_name", "firstname", "name", "given_name", "nombre", "nombres"},
    "last_name": {"last_name", "lastname", "surname", "family_name", "apellido", "apellidos"},
    "email": {"email", "e_mail", "mail", "correo", "correo_electronico"},
}


def _key(text: str) -> str:
    """"Teléfono móvil" → "telefono_movil": how a header is compared with field names and labels."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "_", plain).strip("_")


def targets_of(database: ContactDatabase) -> dict[str, str]:
    """Target name → label, standard columns first, then the database's custom fields."""
    labels = {"phone": _("Phone"), "first_name": _("First name"), "last_name": _("Last name"), "email": _("Email")}
    for spec in database.fields or []:
        labels.setdefault(str(spec["name"]), str(spec.get("label") or spec["name"]))
    return labels


def auto_mapping(*, headers: list[str], database: ContactDatabase) -> dict[str, str]:
    """Column index (as text) → target, for every header that names a target: its field name, its
    label, or a usual spelling of a standard column. Each target is taken by its first column only."""
    by_key: dict[str, str] = {}
    for spec in database.fields or []:
        by_key.setdefault(_key(str(spec["name"])), str(spec["name"]))
        by_key.setdefault(_key(str(spec.get("label") or "")), str(spec["name"]))
    for target, spellings in SYNONYMS.items():
        for spelling in spellings:
            by_key[spelling] = target
    by_key.pop("", None)
    mapping: dict[str, str] = {}
    for index, header in enumerate(headers):
        found = by_key.get(_key(header))
        if found and found not in mapping.values():
            mapping[str(index)] = found
    return mapping


def start_import(*, database: ContactDatabase, upload: UploadedFile | File, encoding: str,
                 user: AbstractBaseUser | AnonymousUser | None) -> ContactImport:
    """Check the uploaded file through (size, encoding, CSV syntax, header) and store it, with the
    columns matched to fields by name. Problems are a 400 naming the file and the row."""
    name = upload.name or "upload"
    try:
        format_of(name)
    except TableError as exc:
        raise InvalidInput(str(exc), field="file") from exc
    if upload.size is not None and upload.size > settings.CONVERSA_IMPORT_MAX_BYTES:
        raise InvalidInput(_("The file is larger than %(max)s MB.")
                           % {"max": settings.CONVERSA_IMPORT_MAX_BYTES // (1024 * 1024)}, field="file")
    try:
        info = inspect_table(binary=upload.file, filename=name, encoding=encoding,  # type: ignore[arg-type]
                             max_rows=settings.CONVERSA_IMPORT_MAX_ROWS)
    except TableError as exc:
        raise InvalidInput(str(exc), field="file") from exc
    upload.seek(0)
    extension = "xlsx" if info.file_format == "xlsx" else "csv"
    upload.name = f"import.{extension}"  # the stored name is the server's; the user's is only shown
    return ContactImport.objects.create(
        database=database, created_by_id=user.pk if user is not None and user.is_authenticated else None,
        file=upload, original_name=name[:255], file_format=info.file_format, encoding=info.encoding,
        delimiter=info.delimiter, headers=info.headers, total_rows=info.total_rows,
        mapping=auto_mapping(headers=info.headers, database=database),
        default_country=settings.CONVERSA_DEFAULT_REGION)


def configure_import(*, contact_import: ContactImport, mapping: dict[str, str], default_country: str,
                     on_duplicate: str, enqueue: bool = True) -> ContactImport:
    """Fix the mapping and options and queue the run (once: a second submit changes nothing).
    `enqueue` False: the caller runs it (manage.py import_contacts --inline)."""
    from conversa.contacts.tasks import run_contact_import  # the task module imports this one

    targets = targets_of(contact_import.database)
    clean: dict[str, str] = {}
    for index, target in mapping.items():
        if not target:
            continue
        if not index.isdigit() or int(index) >= len(contact_import.headers):
            raise InvalidInput(_("Unknown column %(column)s.") % {"column": index}, field="mapping")
        if target not in targets:
            raise InvalidInput(_("Column %(column)s: unknown field %(field)s.")
                               % {"column": contact_import.headers[int(index)], "field": target},
                               field=f"column_{index}")
        if target in clean.values():
            raise InvalidInput(_("Field %(field)s is chosen for two columns.") % {"field": targets[target]},
                               field=f"column_{index}")
        clean[index] = target
    required = ["phone", "first_name"] + [str(s["name"]) for s in contact_import.database.fields or []
                                          if s.get("required")]
    missing = [targets[name] for name in required if name not in clean.values()]
    if missing:
        raise InvalidInput(_("Choose a column for: %(fields)s.") % {"fields": ", ".join(missing)}, field="mapping")
    if on_duplicate not in ContactImport.OnDuplicate.values:
        raise InvalidInput(_("Choose what to do with duplicates."), field="on_duplicate")
    if default_country not in dict(country_choices()):
        raise InvalidInput(_("Choose a country."), field="default_country")
    with transaction.atomic():
        locked = ContactImport.objects.select_for_update().get(pk=contact_import.pk)
        if locked.status != ContactImport.Status.MAPPING:
            return locked
        locked.mapping, locked.default_country, locked.on_duplicate = clean, default_country, on_duplicate
        locked.status = ContactImport.Status.QUEUED
        locked.save(update_fields=["mapping", "default_country", "on_duplicate", "status"])
        if enqueue:
            transaction.on_commit(lambda: run_contact_import.enqueue(locked.pk))
    return locked


def retry_import(*, contact_import: ContactImport) -> ContactImport:
    """Run a failed import again from its checkpoint."""
    from conversa.contacts.tasks import run_contact_import

    with transaction.atomic():
        locked = ContactImport.objects.select_for_update().get(pk=contact_import.pk)
        if locked.status != ContactImport.Status.FAILED:
            return locked
        locked.status, locked.message, locked.finished_at = ContactImport.Status.QUEUED, "", None
        locked.save(update_fields=["status", "message", "finished_at"])
        transaction.on_commit(lambda: run_contact_import.enqueue(locked.pk))
    return locked


@dataclass
class Batch:
    start: int  # rows_done before it
    end: int = 0  # rows_done after it
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # phone → fields (file order)
    problems: list[ContactImportProblem] = field(default_factory=list)
    failed: int = 0
    repeated: int = 0  # rows repeating a phone of an earlier row of the batch (merged or skipped)


@dataclass(frozen=True)
class Plan:
    columns: list[tuple[int, str, str]]  # (index, target, header)
    specs: list[dict[str, Any]]
    region: str
    update: bool


def _problem(row: int, header: str, value: str, message: str) -> ContactImportProblem:
    return ContactImportProblem(row=row, column=header[:200], value=value[:200], message=message[:300])


def _clean_row(plan: Plan, number: int, cells: list[str]) -> tuple[dict[str, Any] | None, list[ContactImportProblem]]:
    """A row's contact fields (phone, standard names, custom) or its problems."""
    problems: list[ContactImportProblem] = []
    row: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    headers: dict[str, tuple[str, str]] = {}
    for index, target, header in plan.columns:
        value = cells[index] if index < len(cells) else ""
        headers[target] = (header, value)
        if target == "phone":
            try:
                row["phone"] = normalize_phone_in(value, region=plan.region)
            except InvalidPhone as exc:
                problems.append(_problem(number, header, value, str(exc)))
        elif target in ("first_name", "last_name", "email"):
            if len(value) > MAX_NAME:
                problems.append(_problem(number, header, value, _("At most %(max)s characters.") % {"max": MAX_NAME}))
            elif target == "email" and value:
                try:
                    validate_email(value)
                except ValidationError:
                    problems.append(_problem(number, header, value, _("Enter a valid email address.")))
            row[target] = value
        else:
            custom[target] = value
    if "first_name" in row and not row["first_name"]:
        header, value = headers["first_name"]
        problems.append(_problem(number, header, value, _("This field is required.")))
    for spec in plan.specs:  # a phone column is read with the import's country, as the main phone is
        name = spec["name"]
        if spec.get("type") == "phone" and custom.get(name):
            try:
                custom[name] = normalize_phone_in(custom[name], region=plan.region)
            except InvalidPhone as exc:
                header, value = headers[name]
                problems.append(_problem(number, header, value, str(exc)))
                custom.pop(name)
    cleaned, field_problems = clean_values(plan.specs, custom, partial=True, max_text=500)
    for problem in field_problems:
        header, value = headers.get(problem.name, (problem.label, ""))
        message = (_("This field is required.") if problem.problem == "required"
                   else _("Invalid %(kind)s: %(error)s") % {"kind": problem.kind, "error": problem.detail})
        problems.append(_problem(number, header, value, message))
    if problems:
        return None, problems
    row["custom"] = cleaned
    return row, []


def _add_row(plan: Plan, batch: Batch, number: int, cells: list[str]) -> None:
    if not any(cells):
        return  # a blank line
    row, problems = _clean_row(plan, number, cells)
    if row is None:
        batch.problems += problems
        batch.failed += 1
        return
    earlier = batch.contacts.get(row["phone"])
    if earlier is None:
        batch.contacts[row["phone"]] = row
    elif plan.update:  # the later row wins, as it would in the next batch
        earlier.update({k: v for k, v in row.items() if k != "custom" and v})
        earlier["custom"].update(row["custom"])
        batch.repeated += 1
    else:
        batch.repeated += 1


def _apply(contact: Contact, row: dict[str, Any]) -> None:
    """The file's non-empty values over the contact's: an import never erases."""
    for name in ("first_name", "last_name", "email"):
        if row.get(name):
            setattr(contact, name, row[name])
    contact.custom = {**(contact.custom or {}), **row["custom"]}


def commit_batch(*, import_id: int, batch: Batch, run_seconds: float) -> bool:
    """Write one batch and move the checkpoint, in one transaction. False when the checkpoint is not
    where this run left it (another run of the same import got there first): nothing written.
    `run_seconds`: time spent on the import so far, over every run (for rows per second)."""
    with transaction.atomic():
        imp = ContactImport.objects.select_for_update().get(pk=import_id)
        if imp.rows_done != batch.start or imp.status != ContactImport.Status.RUNNING:
            return False
        existing = {c.phone: c for c in Contact.objects.filter(database_id=imp.database_id,
                                                               phone__in=list(batch.contacts))}
        new = [Contact(database_id=imp.database_id, phone=phone, first_name=row.get("first_name", ""),
                       last_name=row.get("last_name", ""), email=row.get("email", ""), custom=row["custom"])
               for phone, row in batch.contacts.items() if phone not in existing]
        # ignore_conflicts: an agent may create one of these phones meanwhile; that contact stays hers.
        Contact.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
        updated: list[Contact] = []
        if imp.on_duplicate == ContactImport.OnDuplicate.UPDATE:
            now = timezone.now()
            for phone, contact in existing.items():
                _apply(contact, batch.contacts[phone])
                contact.updated_at = now
                updated.append(contact)
            Contact.objects.bulk_update(updated, ["first_name", "last_name", "email", "custom", "updated_at"],
                                        batch_size=500)
        for problem in batch.problems:
            problem.contact_import_id = import_id
        ContactImportProblem.objects.bulk_create(batch.problems, batch_size=500)
        imp.rows_done = batch.end
        imp.created += len(new)
        if imp.on_duplicate == ContactImport.OnDuplicate.UPDATE:
            imp.updated += len(updated) + batch.repeated
        else:
            imp.skipped += len(existing) + batch.repeated
        imp.failed += batch.failed
        imp.run_seconds = run_seconds
        imp.save(update_fields=["rows_done", "created", "updated", "skipped", "failed", "run_seconds"])
    return True


def begin_run(*, import_id: int) -> ContactImport | None:
    """Mark a queued (or interrupted) import running; None when there is nothing to run."""
    with transaction.atomic():
        imp = ContactImport.objects.select_for_update().filter(pk=import_id).first()
        if imp is None or imp.status not in (ContactImport.Status.QUEUED, ContactImport.Status.RUNNING):
            return None
        imp.status = ContactImport.Status.RUNNING
        imp.started_at = imp.started_at or timezone.now()
        imp.save(update_fields=["status", "started_at"])
        return imp


def end_run(*, import_id: int, message: str = "", run_seconds: float | None = None) -> None:
    """Done, or failed with `message`."""
    with transaction.atomic():
        imp = ContactImport.objects.select_for_update().get(pk=import_id)
        if imp.status != ContactImport.Status.RUNNING:
            return
        imp.status = ContactImport.Status.FAILED if message else ContactImport.Status.DONE
        imp.message = message
        imp.finished_at = timezone.now()
        if run_seconds is not None:
            imp.run_seconds = run_seconds
        imp.save(update_fields=["status", "message", "finished_at", "run_seconds"])


def _batches(plan: Plan, rows: Iterable[tuple[int, list[str]]], *, skip: int, size: int) -> Iterable[Batch]:
    batch = Batch(start=skip)
    done = skip
    for number, cells in rows:
        if number - 1 <= skip:
            continue  # committed by an earlier run
        _add_row(plan, batch, number, cells)
        done = number - 1
        if done - batch.start >= size:
            batch.end = done
            yield batch
            batch = Batch(start=done)
    if done > batch.start:
        batch.end = done
        yield batch


def run_import(*, import_id: int) -> str:
    """The task's body: the rows after the checkpoint, a batch per transaction."""
    imp = begin_run(import_id=import_id)
    if imp is None:
        return "nothing to run"
    columns = sorted((int(index), target, imp.headers[int(index)]) for index, target in imp.mapping.items())
    plan = Plan(columns=columns, specs=list(imp.database.fields or []), region=imp.default_country,
                update=imp.on_duplicate == ContactImport.OnDuplicate.UPDATE)
    size = settings.CONVERSA_IMPORT_BATCH
    started, earlier = time.monotonic(), imp.run_seconds  # earlier runs' time counts (a resumed import)

    def spent() -> float:
        return earlier + time.monotonic() - started

    if not imp.file:  # discarded after its retention (discard_spent_files)
        end_run(import_id=import_id, message=_("The uploaded file is no longer stored."), run_seconds=spent())
        return "failed: file discarded"
    try:
        with imp.file.storage.open(imp.file.name, "rb") as stored:
            rows = read_rows(binary=_binary(stored), file_format=imp.file_format, encoding=imp.encoding,
                             delimiter=imp.delimiter)
            for batch in _batches(plan, rows, skip=imp.rows_done, size=size):
                if not commit_batch(import_id=import_id, batch=batch, run_seconds=spent()):
                    return "stopped: another run of this import is ahead"
    except TableError as exc:
        end_run(import_id=import_id, message=str(exc), run_seconds=spent())
        return f"failed: {exc}"
    except FileNotFoundError:
        end_run(import_id=import_id, message=_("The uploaded file is no longer stored."), run_seconds=spent())
        return "failed: file missing"
    end_run(import_id=import_id, run_seconds=spent())
    return "done"


def _binary(stored: File) -> IO[bytes]:
    """The storage's own binary stream under Django's File wrapper (what csv and zipfile read best)."""
    inner = stored.file
    return inner if inner is not None and hasattr(inner, "readable") else stored  # type: ignore[return-value]


def discard_spent_files() -> int:
    """An uploaded file holds customers' names and phones, and nothing needs it once its import is
    over: a finished import's file goes at the next sweep; a failed one's (it may be retried) or one
    never mapped after CONVERSA_IMPORT_FILE_RETENTION_HOURS. The import's row, its counts and its
    problem report stay. Returns the files discarded (bounded per sweep)."""
    cutoff = timezone.now() - timedelta(hours=settings.CONVERSA_IMPORT_FILE_RETENTION_HOURS)
    spent = list(ContactImport.objects.exclude(file="").filter(
        Q(status=ContactImport.Status.DONE)
        | Q(status=ContactImport.Status.FAILED, finished_at__lt=cutoff)
        | Q(status=ContactImport.Status.MAPPING, created_at__lt=cutoff),
    ).order_by("pk").values_list("pk", "file")[:SPENT_FILES_PER_SWEEP])
    storage = ContactImport._meta.get_field("file").storage  # type: ignore[union-attr]
    for pk, name in spent:
        # The file first: a failure here leaves the row pointing at it, for the next sweep; never a
        # stored file that no row names. (A run started meanwhile ends "file no longer stored".)
        storage.delete(name)
        ContactImport.objects.filter(pk=pk, file=name).update(file="")
    return len(spent)


@receiver(post_delete, sender=ContactImport, dispatch_uid="conversa.contacts.imports.file_of_deleted_import")
def _discard_file_of_deleted_import(sender: Any, instance: ContactImport, **kwargs: Any) -> None:
    """An import deleted (its database deleted in the admin, say) takes its file along, once the
    deletion commits."""
    name = instance.file.name if instance.file else ""
    if name:
        storage = instance.file.storage
        transaction.on_commit(lambda: _delete_quietly(storage=storage, name=name))


def _delete_quietly(*, storage: Any, name: str) -> None:
    try:
        storage.delete(name)
    except OSError:
        logger.warning("contact import file %s could not be deleted", name, exc_info=True)

"""Contact imports (issue 12): upload, column mapping matched by name, bad rows and the error report,
duplicates skipped or updated, resuming from the checkpoint, batches instead of a query per row,
.xlsx files, and untrusted files refused with a message naming the row."""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Callable
from typing import Any

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils.timezone import now as timezone_now

from conversa.contacts import imports
from conversa.contacts.models import Contact, ContactDatabase, ContactImport, ContactImportProblem

HEADER = "Teléfono;Nombre;Apellido;E-mail;Customer number;Plan;Notas\n"


def _client(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def _support() -> ContactDatabase:
    return ContactDatabase.objects.get(name="Support contacts")


def _upload(client: Client, database: ContactDatabase, name: str, content: bytes, encoding: str = "utf-8") -> Any:
    return client.post(f"/supervisor/contacts/{database.pk}/import/",
                       {"file": _named(content, name), "encoding": encoding})


def _named(content: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def _mapping_post(client: Client, contact_import: ContactImport, *, on_duplicate: str = "skip",
                  country: str = "AR", **overrides: str) -> Any:
    data = {f"column_{i}": target for i, target in contact_import.mapping.items()}
    data.update(overrides)
    data.update({"default_country": country, "on_duplicate": on_duplicate})
    return client.post(f"/supervisor/contacts/imports/{contact_import.pk}/", data)


def _import(client: Client, database: ContactDatabase, content: bytes, run_tasks: Callable[[], None], *,
            name: str = "contacts.csv", on_duplicate: str = "skip") -> ContactImport:
    response = _upload(client, database, name, content)
    assert response.status_code == 302, response.content.decode()
    contact_import = ContactImport.objects.latest("id")
    response = _mapping_post(client, contact_import, on_duplicate=on_duplicate)
    assert response.status_code == 302, response.content.decode()
    run_tasks()
    contact_import.refresh_from_db()
    return contact_import


def test_an_import_with_bad_rows_creates_the_good_ones_and_reports_each_problem(demo, run_tasks):
    client = _client("supervisor")
    database = _support()
    content = (HEADER
               + "11 5555-0101;Ana;Pérez;ana@example.com;C-1;pro;x\n"       # row 2: national number (AR)
               + "+5491155550102;Bea;;;C-2;basic;\n"                          # row 3
               + "no es un teléfono;Carla;;;;;\n"                             # row 4: bad phone
               + "+5491155550104;;Sin nombre;;;;\n"                           # row 5: first name missing
               + "+5491155550105;Dora;;not-an-email;;gold;\n"                 # row 6: bad email and plan
               + "\n"                                                         # row 7: blank, ignored
               + "0054 9 11 5555 0102;Bea bis;;;;;\n"                         # row 8: same phone as row 3
               + "+5491155550109;Eva;;;;enterprise;\n").encode()              # row 9
    response = _upload(client, database, "clientes.csv", content)
    assert response.status_code == 302
    contact_import = ContactImport.objects.get()
    assert contact_import.total_rows == 8 and contact_import.delimiter == ";"
    page = client.get(response["Location"])
    assert page.status_code == 200 and "Match the columns to fields" in page.content.decode()

    assert _mapping_post(client, contact_import).status_code == 302
    run_tasks()
    progress = client.get(f"/supervisor/contacts/imports/{contact_import.pk}/progress/").json()
    assert progress["status"] == "done", progress
    assert (progress["rows_done"], progress["created"], progress["skipped"], progress["failed"]) == (8, 3, 1, 3)
    assert progress["percent"] == 100 and progress["problems"] == 4

    stored = {c.phone: c for c in Contact.objects.filter(database=database)}
    assert set(stored) >= {"+541155550101", "+5491155550102", "+5491155550109"}
    assert stored["+541155550101"].custom == {"customer_number": "C-1", "plan": "pro"}
    assert stored["+5491155550102"].first_name == "Bea"  # the later duplicate row was skipped
    assert not Contact.objects.filter(phone__in=["+5491155550104", "+5491155550105"]).exists()

    report = client.get(f"/supervisor/contacts/imports/{contact_import.pk}/errors.csv")
    assert report.status_code == 200 and report["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode().lstrip("\ufeff"))))
    assert lines[0] == ["Row", "Column", "Value", "Problem"]
    by_row = {(row, column): problem for row, column, _value, problem in lines[1:]}
    assert set(by_row) == {("4", "Teléfono"), ("5", "Nombre"), ("6", "E-mail"), ("6", "Plan")}
    assert "not a valid phone number" in by_row[("4", "Teléfono")]
    assert "required" in by_row[("5", "Nombre")]
    assert "basic, pro, enterprise" in by_row[("6", "Plan")]


def test_columns_are_matched_by_field_name_label_or_usual_spelling(demo):
    headers = ["Phone number", "NOMBRE", "Last name", "E-mail", "Customer Number", "plan", "Unrelated", "Celular"]
    mapping = imports.auto_mapping(headers=headers, database=_support())
    assert mapping == {"0": "phone", "1": "first_name", "2": "last_name", "3": "email", "4": "customer_number",
                       "5": "plan"}  # "Celular" is a phone spelling too, but the phone is taken


def test_a_mapping_without_phone_or_name_is_refused_naming_what_is_missing(demo):
    client = _client("supervisor")
    _upload(client, _support(), "a.csv", b"Tel,Name,Plan\n+5491155550101,Ana,pro\n")
    contact_import = ContactImport.objects.get()
    response = _mapping_post(client, contact_import, column_1="")
    assert response.status_code == 400
    assert "Choose a column for: First name" in response.content.decode()
    response = _mapping_post(client, contact_import, column_2="phone")
    assert response.status_code == 400 and "chosen for two columns" in response.content.decode()
    assert ContactImport.objects.get().status == "mapping"


def test_duplicates_are_skipped_or_updated_and_a_rerun_duplicates_nobody(demo, run_tasks):
    client = _client("supervisor")
    database = _support()
    first = b"phone,first_name,last_name,plan\n+5491155550201,Ana,Uno,basic\n+5491155550202,Bea,Dos,pro\n"
    done = _import(client, database, first, run_tasks)
    assert (done.created, done.skipped) == (2, 0)

    again = _import(client, database, first, run_tasks)  # the same file again: nobody twice
    assert (again.created, again.skipped, again.updated) == (0, 2, 0)
    assert Contact.objects.filter(database=database, phone__startswith="+54911555502").count() == 2

    changed = ("phone,first_name,last_name,plan\n+5491155550201,Ana María,,pro\n"
               "+5491155550203,Cora,Tres,basic\n").encode()
    skipped = _import(client, database, changed, run_tasks)
    assert (skipped.created, skipped.skipped) == (1, 1)
    assert Contact.objects.get(phone="+5491155550201").first_name == "Ana"

    updated = _import(client, database, changed, run_tasks, on_duplicate="update")
    assert (updated.created, updated.updated, updated.skipped) == (0, 2, 0)
    ana = Contact.objects.get(phone="+5491155550201")
    assert (ana.first_name, ana.last_name, ana.custom["plan"]) == ("Ana María", "Uno", "pro")  # empty cell kept


@override_settings(CONVERSA_IMPORT_BATCH=10)
def test_an_interrupted_import_resumes_from_its_checkpoint(demo, run_tasks):
    client = _client("supervisor")
    database = _support()
    rows = [f"+54911556{n:05d},Name {n},,basic" for n in range(95)] + ["bad phone,Nobody,,basic"] * 5
    content = ("phone,first_name,last_name,plan\n" + "\n".join(rows) + "\n").encode()
    _upload(client, database, "big.csv", content)
    contact_import = ContactImport.objects.get()
    imports.configure_import(contact_import=contact_import, mapping=contact_import.mapping, default_country="AR",
                             on_duplicate="skip", enqueue=False)
    # A run that dies after three batches: what a killed worker leaves (status running, checkpoint 30).
    imports.begin_run(import_id=contact_import.pk)
    plan = imports.Plan(columns=[(0, "phone", "phone"), (1, "first_name", "first_name"), (3, "plan", "plan")],
                        specs=database.fields, region="AR", update=False)
    with contact_import.file.open("rb") as binary:
        read = imports.read_rows(binary=binary, file_format="csv", encoding="utf-8", delimiter=",")
        for n, batch in enumerate(imports._batches(plan, read, skip=0, size=10)):
            if n == 3:
                break
            assert imports.commit_batch(import_id=contact_import.pk, batch=batch, run_seconds=0.01 * (n + 1))
    contact_import.refresh_from_db()
    assert (contact_import.status, contact_import.rows_done, contact_import.created) == ("running", 30, 30)

    # The sweep runs the dead worker's task again: it carries on after row 31.
    from conversa.contacts.tasks import run_contact_import
    run_contact_import.enqueue(contact_import.pk)
    run_tasks()
    contact_import.refresh_from_db()
    assert contact_import.status == "done"
    assert (contact_import.rows_done, contact_import.created, contact_import.failed) == (100, 95, 5)
    assert Contact.objects.filter(database=database, phone__startswith="+54911556").count() == 95
    assert ContactImportProblem.objects.filter(contact_import=contact_import).count() == 5  # none twice
    assert contact_import.run_seconds > 0.03  # the first run's time still counts

    # A stale run (its checkpoint is behind) writes nothing.
    stale = imports.Batch(start=0, end=10)
    assert imports.commit_batch(import_id=contact_import.pk, batch=stale, run_seconds=1.0) is False


@override_settings(CONVERSA_IMPORT_BATCH=100)
def test_rows_are_written_in_batches_not_one_query_per_row(demo, run_tasks):
    client = _client("supervisor")
    database = _support()
    rows = [f"+54911557{n:05d},Name {n},basic" for n in range(300)]
    _upload(client, database, "batch.csv", ("phone,first_name,plan\n" + "\n".join(rows) + "\n").encode())
    contact_import = ContactImport.objects.get()
    imports.configure_import(contact_import=contact_import, mapping=contact_import.mapping, default_country="AR",
                             on_duplicate="update", enqueue=False)
    with CaptureQueriesContext(connection) as queries:
        imports.run_import(import_id=contact_import.pk)
    contact_import.refresh_from_db()
    assert contact_import.created == 300
    assert len(queries) <= 3 * 12, [q["sql"][:80] for q in queries]


def test_an_xlsx_workbook_is_read_with_numbers_and_dates_as_typed(demo, run_tasks):
    database = ContactDatabase.objects.create(name="Leads", fields=[
        {"name": "since", "label": "Customer since", "type": "date", "required": False},
        {"name": "score", "label": "Score", "type": "number", "required": False},
        {"name": "alt", "label": "Other phone", "type": "phone", "required": False}])
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Celular", "Nombre", "Customer since", "Score", "Other phone"])
    sheet.append([5491155550301, "Ana", datetime.datetime(2024, 1, 31), 7, "11 5555-0302"])
    sheet.append(["+5491155550303", "Bea", None, 2.5, None])
    out = io.BytesIO()
    book.save(out)
    done = _import(_client("admin"), database, out.getvalue(), run_tasks, name="leads.xlsx")
    assert (done.status, done.created, done.failed) == ("done", 2, 0), done.message
    ana = Contact.objects.get(database=database, phone="+5491155550301")
    assert ana.custom == {"since": "2024-01-31", "score": 7, "alt": "+541155550302"}
    assert Contact.objects.get(database=database, phone="+5491155550303").custom == {"score": 2.5}


@pytest.mark.parametrize(("name", "content", "encoding", "expected"), [
    ("list.pdf", b"%PDF-1.4", "utf-8", "Upload a .csv or .xlsx file."),
    ("latin.csv", "phone,name\n+5491155550001,Ana\n+5491155550002,Jos\u00e9\n".encode("latin-1"), "utf-8",
     "Row 3 is not valid UTF-8 text"),
    ("empty.csv", b"", "utf-8", "The submitted file is empty."),
    ("header-only-blank.csv", b"\n", "utf-8", "Row 1 must hold the column names"),
    ("blank-header.csv", b",,\n+5491155550001,Ana,\n", "utf-8", "Row 1 must hold the column names"),
    ("fake.xlsx", b"PK\x03\x04 not really a zip", "utf-8", "not a valid .xlsx workbook"),
    ("huge-cell.csv", b"phone,name\n+5491155550001,Ana\n+5491155550002,\"" + b"a" * 200_000 + b"\"\n", "utf-8",
     "Row 3 cannot be read as CSV"),
])
def test_an_unreadable_file_is_refused_with_a_message_naming_the_row(demo, name, content, encoding, expected):
    response = _upload(_client("supervisor"), _support(), name, content, encoding)
    assert response.status_code == 400
    assert expected in response.content.decode()
    assert not ContactImport.objects.exists()


def test_the_same_latin_1_file_imports_with_its_encoding_chosen(demo, run_tasks):
    client = _client("supervisor")
    response = _upload(client, _support(), "latin.csv", "phone;nombre\n+5491155550401;Jos\u00e9\n".encode("cp1252"),
                       "cp1252")
    assert response.status_code == 302
    _mapping_post(client, ContactImport.objects.get())
    run_tasks()
    assert Contact.objects.get(phone="+5491155550401").first_name == "Jos\u00e9"


@override_settings(CONVERSA_IMPORT_MAX_BYTES=100)
def test_a_file_over_the_size_limit_is_refused(demo):
    response = _upload(_client("supervisor"), _support(), "big.csv", b"phone,name\n" + b"+5491155550001,Ana\n" * 10)
    assert response.status_code == 400 and "larger than" in response.content.decode()


@override_settings(CONVERSA_IMPORT_MAX_ROWS=5)
def test_a_file_over_the_row_limit_is_refused(demo):
    response = _upload(_client("supervisor"), _support(), "rows.csv", b"phone,name\n" + b"+5491155550001,Ana\n" * 6)
    assert response.status_code == 400 and "more than 5 rows" in response.content.decode()


def test_only_supervisors_of_the_database_and_admins_reach_it(demo):
    other = ContactDatabase.objects.create(name="Nobody's")
    assert _client("agent1").get("/supervisor/contacts/").status_code == 403
    assert _client("supervisor").get(f"/supervisor/contacts/{other.pk}/").status_code == 404
    assert _client("supervisor").get(f"/supervisor/contacts/{other.pk}/export.csv").status_code == 404
    assert _client("admin").get(f"/supervisor/contacts/{other.pk}/").status_code == 200
    listing = _client("supervisor").get("/supervisor/contacts/").content.decode()
    assert "Support contacts" in listing and "Nobody&#x27;s" not in listing and "Nobody's" not in listing


def test_an_import_file_is_deleted_once_nothing_needs_it(demo, run_tasks, settings, django_capture_on_commit_callbacks):
    """Uploaded files hold customers' names and phones: a finished import's goes at the next sweep, a
    failed or unmapped one's after the retention (time to retry or map it), a deleted import's at once."""
    from conversa.core.worker import sweep

    settings.CONVERSA_IMPORT_FILE_RETENTION_HOURS = 24
    client = _client("supervisor")
    database = _support()
    finished = _import(client, database, (HEADER + "+5491155550301;Ana;;;;;\n").encode(), run_tasks)
    _upload(client, database, "later.csv", (HEADER + "+5491155550302;Bea;;;;;\n").encode())
    unmapped = ContactImport.objects.latest("id")
    _upload(client, database, "failing.csv", (HEADER + "+5491155550303;Carla;;;;;\n").encode())
    failing = ContactImport.objects.latest("id")
    imports.configure_import(contact_import=failing, mapping=failing.mapping, default_country="AR",
                             on_duplicate="skip", enqueue=False)
    imports.begin_run(import_id=failing.pk)
    imports.end_run(import_id=failing.pk, message="the worker gave up")
    stored = {i.pk: i.file.name for i in (finished, unmapped, failing)}
    storage = finished.file.storage
    assert finished.status == "done" and all(storage.exists(name) for name in stored.values())

    assert sweep()["contact_import_files"] == 1  # only the finished import's
    finished.refresh_from_db()
    assert not finished.file and not storage.exists(stored[finished.pk])
    assert (finished.status, finished.created) == ("done", 1)  # its record stays
    assert storage.exists(stored[unmapped.pk]) and storage.exists(stored[failing.pk])

    past = timezone_now() - datetime.timedelta(hours=25)
    ContactImport.objects.filter(pk=unmapped.pk).update(created_at=past)
    ContactImport.objects.filter(pk=failing.pk).update(finished_at=past)
    assert sweep()["contact_import_files"] == 2
    assert not any(storage.exists(name) for name in stored.values())
    assert not ContactImport.objects.exclude(file="").exists()
    # A retry after that says why it cannot run, rather than failing silently.
    failing.refresh_from_db()
    imports.retry_import(contact_import=failing)
    imports.run_import(import_id=failing.pk)
    failing.refresh_from_db()
    assert failing.status == "failed" and "no longer stored" in failing.message

    _upload(client, database, "dropped.csv", (HEADER + "+5491155550304;Dora;;;;;\n").encode())
    dropped = ContactImport.objects.latest("id")
    name = dropped.file.name
    with django_capture_on_commit_callbacks(execute=True):
        dropped.delete()  # in the admin, say: its file goes with it
    assert not ContactImport.objects.filter(pk=dropped.pk).exists()
    assert not storage.exists(name)

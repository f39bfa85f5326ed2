"""Contact databases for supervisors (issue 12): CSV export (streamed, formula cells escaped and only
those, importable back unchanged), the contacts page's search, field filter and keyset pages, and
the custom columns edited as a form in the admin."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.http import StreamingHttpResponse
from django.test import Client

from conversa.contacts.models import Contact, ContactDatabase, ContactImport


def _client(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def _csv(response: StreamingHttpResponse) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def test_the_export_streams_every_contact_escaping_only_formula_cells(demo, run_tasks: Callable[[], None]):
    database = ContactDatabase.objects.create(name="Export", fields=[
        {"name": "note", "label": "Note", "type": "text", "required": False},
        {"name": "score", "label": "Score", "type": "number", "required": False}])
    Contact.objects.create(database=database, phone="+5491155550501", first_name="=HYPERLINK(\"http://x\")",
                           last_name="@SUM(A1)", email="ana@example.com", custom={"note": "\tTab", "score": -3})
    Contact.objects.create(database=database, phone="+5491155550502", first_name="Bea", last_name="O'Neil",
                           custom={"note": "\rCR", "score": 4})
    Contact.objects.create(database=database, phone="+5491155550503", first_name="Cora", last_name="a=b",
                           custom={"note": "plain, with comma"})
    response = _client("admin").get(f"/supervisor/contacts/{database.pk}/export.csv")
    assert response.status_code == 200 and isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    rows = _csv(response)
    assert rows[0] == ["phone", "first_name", "last_name", "email", "note", "score"]
    assert rows[1] == ["'+5491155550501", "'=HYPERLINK(\"http://x\")", "'@SUM(A1)", "ana@example.com", "'\tTab", "'-3"]
    assert rows[2] == ["'+5491155550502", "Bea", "O'Neil", "", "'\rCR", "4"]
    assert rows[3] == ["'+5491155550503", "Cora", "a=b", "", "plain, with comma", ""]  # untouched

    # The export imports back unchanged: the apostrophes an export adds come off again.
    body = b"".join(_client("admin").get(f"/supervisor/contacts/{database.pk}/export.csv").streaming_content)
    copy = ContactDatabase.objects.create(name="Copy", fields=database.fields)
    client = _client("admin")
    client.post(f"/supervisor/contacts/{copy.pk}/import/", {"file": _named(body, "export.csv"), "encoding": "utf-8"})
    contact_import = ContactImport.objects.get(database=copy)
    data = {f"column_{i}": t for i, t in contact_import.mapping.items()}
    client.post(f"/supervisor/contacts/imports/{contact_import.pk}/",
                {**data, "default_country": "AR", "on_duplicate": "skip"})
    run_tasks()
    contact_import.refresh_from_db()
    assert (contact_import.created, contact_import.failed) == (3, 0), contact_import.message
    ana = Contact.objects.get(database=copy, phone="+5491155550501")
    assert (ana.first_name, ana.last_name, ana.custom) == ("=HYPERLINK(\"http://x\")", "@SUM(A1)",
                                                           {"note": "Tab", "score": -3})


def _named(content: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def test_the_contacts_page_searches_filters_by_field_and_pages_by_keyset(demo):
    database = ContactDatabase.objects.get(name="Support contacts")
    for n in range(60):
        Contact.objects.create(database=database, phone=f"+54911555{n + 600:05d}", first_name=f"Zed {n:02d}",
                               custom={"plan": "pro" if n % 2 else "basic"})
    client = _client("supervisor")
    page = client.get(f"/supervisor/contacts/{database.pk}/", {"q": "zed"}).content.decode()
    assert page.count("Zed ") == 50 and "Zed 00" in page and "Zed 50" not in page
    next_link = re.search(r'href="\?([^"]+)" rel="next"', page)
    assert next_link is not None
    query = next_link.group(1).replace("&amp;", "&")
    rest = client.get(f"/supervisor/contacts/{database.pk}/?{query}").content.decode()
    assert rest.count("Zed ") == 10 and "Zed 59" in rest and 'rel="next"' not in rest

    filtered = client.get(f"/supervisor/contacts/{database.pk}/", {"q": "zed", "field": "plan", "value": "pro"})
    body = filtered.content.decode()
    assert body.count("Zed ") == 30 and "Zed 01" in body and "Zed 00" not in body
    assert client.get(f"/supervisor/contacts/{database.pk}/", {"after": "garbage"}).status_code == 400


def test_custom_columns_are_edited_as_rows_of_a_form(demo):
    database = ContactDatabase.objects.get(name="Support contacts")
    client = _client("admin")
    url = f"/admin/contacts/contactdatabase/{database.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="fields-0-name" value="customer_number"' in page and 'name="fields-count"' in page

    def post(rows: list[dict[str, str]]) -> str:
        data = {"name": database.name, "fields-count": str(len(rows))}
        for i, row in enumerate(rows):
            data.update({f"fields-{i}-{key}": value for key, value in row.items()})
        response = client.post(url, data)
        return "" if response.status_code == 302 else response.content.decode()

    errors = post([{"name": "customer_number", "label": "Customer number", "type": "text"},
                   {"name": "plan", "label": "Plan", "type": "choice", "choices": ""},
                   {"name": "2nd", "label": "Bad", "type": "text"},
                   {"name": "phone", "label": "Phone again", "type": "text"}])
    assert "Row 2 (plan): a choice field needs its choices" in errors
    assert "Row 3 (2nd): the name must be made of letters" in errors
    assert "Row 4 (phone): phone is a column every contact already has." in errors

    assert post([{"name": "customer_number", "label": "Customer number", "type": "text", "delete": "on"},
                 {"name": "plan", "label": "Plan", "type": "choice", "choices": "basic, pro , gold",
                  "required": "on"},
                 {"name": "alt_phone", "label": "Other phone", "type": "phone"},
                 {"name": "", "label": "", "type": "text", "choices": ""}]) == ""
    database.refresh_from_db()
    assert database.fields == [
        {"name": "plan", "label": "Plan", "type": "choice", "required": True, "choices": ["basic", "pro", "gold"]},
        {"name": "alt_phone", "label": "Other phone", "type": "phone", "required": False}]

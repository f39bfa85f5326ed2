"""Who a bulk send goes to, as rows of values: a campaign's contact database (optionally
filtered) or an uploaded CSV file, each row a phone and the values its {placeholders} may use."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.core.files.uploadedfile import UploadedFile
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from conversa.contacts.models import Contact, ContactDatabase
from conversa.core.errors import InvalidInput

PLACEHOLDER = re.compile(r"\{([^{}\s]{1,60})\}")
MAX_CSV_BYTES = 20 * 1024 * 1024
PHONE_COLUMNS = ("phone", "telefono", "teléfono", "number", "numero", "número", "whatsapp")


@dataclass
class SourceRow:
    row: int  # 1-based position in the source
    phone: str  # as given
    contact_id: int | None = None
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContactFilter:
    """Contacts of the database whose name, phone or email contain `text`, and whose custom field
    `field` equals `value` (each part optional)."""

    text: str = ""
    field: str = ""
    value: str = ""

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("text", self.text), ("field", self.field), ("value", self.value)) if v}


def contact_values(contact: Contact) -> dict[str, str]:
    values = {"first_name": contact.first_name, "last_name": contact.last_name, "full_name": contact.full_name,
              "phone": contact.phone, "email": contact.email}
    for name, value in (contact.custom or {}).items():
        values.setdefault(str(name), "" if value is None else str(value))
    return values


def filtered_contacts(*, database: ContactDatabase, contact_filter: ContactFilter) -> QuerySet[Contact]:
    contacts = Contact.objects.filter(database=database).exclude(phone="")
    if contact_filter.text:
        term = contact_filter.text
        contacts = contacts.filter(Q(first_name__icontains=term) | Q(last_name__icontains=term)
                                   | Q(phone__icontains=term) | Q(email__icontains=term))
    if contact_filter.field:
        known = {str(f.get("name")) for f in database.fields or [] if isinstance(f, dict)}
        if contact_filter.field not in known:
            raise InvalidInput(_("'%(field)s' is not a field of this contact database.")
                               % {"field": contact_filter.field}, field="filter_field")
        contacts = contacts.filter(**{f"custom__{contact_filter.field}": contact_filter.value})
    return contacts.order_by("id")


def database_rows(*, database: ContactDatabase, contact_filter: ContactFilter) -> Iterator[SourceRow]:
    contacts = filtered_contacts(database=database, contact_filter=contact_filter)
    for n, contact in enumerate(contacts.iterator(chunk_size=2000), start=1):
        yield SourceRow(row=n, phone=contact.phone, contact_id=contact.pk, values=contact_values(contact))


def _column(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def csv_rows(upload: UploadedFile) -> tuple[list[str], list[SourceRow]]:
    """The file's columns and rows (UTF-8, with or without BOM; comma or semicolon). It needs a
    phone column; a 400 names what is wrong."""
    if upload.size is not None and upload.size > MAX_CSV_BYTES:
        raise InvalidInput(_("The file is too big (at most %(mb)d MB).") % {"mb": MAX_CSV_BYTES // 2**20},
                           field="file")
    raw = upload.read()
    try:
        text = codecs.decode(raw, "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(_("The file is not UTF-8 text."), field="file") from exc
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = [_column(c) for c in next(reader)]
    except StopIteration as exc:
        raise InvalidInput(_("The file is empty."), field="file") from exc
    except csv.Error as exc:
        raise InvalidInput(_("The file is not a readable CSV file."), field="file") from exc
    phone_column = next((c for c in header if c in PHONE_COLUMNS), None)
    if phone_column is None:
        raise InvalidInput(_("The file needs a phone column (phone, telefono or number)."), field="file")
    phone_at = header.index(phone_column)
    rows: list[SourceRow] = []
    try:
        for n, cells in enumerate(reader, start=1):
            if not any(cell.strip() for cell in cells):
                continue
            values = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header) if name}
            rows.append(SourceRow(row=n, phone=cells[phone_at].strip() if phone_at < len(cells) else "",
                                  values=values))
    except csv.Error as exc:
        raise InvalidInput(_("The file is not a readable CSV file."), field="file") from exc
    return header, rows


def render_params(specs: list[str], values: dict[str, str]) -> list[str]:
    """Each parameter text with its {placeholders} filled from the row (unknown ones left empty)."""
    return [PLACEHOLDER.sub(lambda m: values.get(m.group(1).lower(), values.get(m.group(1), "")), spec).strip()
            for spec in specs]

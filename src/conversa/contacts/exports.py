"""CSV files streamed out of contacts: a database's contacts and an import's error report.
Constant memory: rows come from chunked queries and each line is handed on as it is written."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _

from conversa.contacts.models import Contact, ContactDatabase, ContactImportProblem

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection). Such a cell
# gets a leading apostrophe, and only such a cell; an import takes that apostrophe off again
# (contacts.tabular.cell_text), so an exported file imports back unchanged.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """csv.writer target that hands each line back instead of buffering it."""

    def write(self, value: str) -> str:
        return value


def _lines(header: list[str], rows: Iterable[list[Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff"  # BOM: Excel then reads the file as UTF-8
    yield writer.writerow([safe_cell(v) for v in header])
    for row in rows:
        yield writer.writerow([safe_cell(v) for v in row])


def contacts_csv(*, database: ContactDatabase, contacts: Iterable[Contact]) -> Iterator[str]:
    """phone, first_name, last_name, email, then each custom field by name: the columns an import
    matches back by name."""
    names = [str(spec["name"]) for spec in database.fields or []]
    header = ["phone", "first_name", "last_name", "email", *names]
    rows = ([c.phone, c.first_name, c.last_name, c.email, *[(c.custom or {}).get(n, "") for n in names]]
            for c in contacts)
    return _lines(header, rows)


def problems_csv(*, problems: Iterable[ContactImportProblem]) -> Iterator[str]:
    """The error report, in the language active now (the body streams later, maybe on another thread)."""
    language = translation.get_language()

    def lines() -> Iterator[str]:
        with translation.override(language):
            header = [_("Row"), _("Column"), _("Value"), _("Problem")]
            yield from _lines(header, ([p.row, p.column, p.value, p.message] for p in problems))

    return lines()

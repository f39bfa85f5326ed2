"""Reading an uploaded table (CSV or .xlsx) a row at a time, never the whole file in memory.

The file is untrusted: its size, columns and cells are bounded, and every problem is a TableError
whose message names the row (as a spreadsheet numbers it: the header is row 1)."""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.utils.translation import gettext as _

# Encodings offered for a CSV file: UTF-8 (a BOM is skipped) and the two an Excel of Latin America
# or Spain saves with "CSV" on Windows.
ENCODINGS = {"utf-8": "UTF-8", "cp1252": "Windows-1252 (Excel)", "latin-1": "ISO-8859-1 (Latin-1)"}
MAX_COLUMNS = 200
MAX_HEADER = 200  # characters of a column name kept
DELIMITERS = ",;\t|"
_CHUNK = 64 * 1024
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # as contacts.exports escapes them


class TableError(ValueError):
    """The file cannot be read; the message says where and why."""


@dataclass(frozen=True)
class TableInfo:
    file_format: str  # "csv" | "xlsx"
    encoding: str
    delimiter: str
    headers: list[str]
    total_rows: int  # data rows (after the header)


def format_of(filename: str) -> str:
    name = filename.lower()
    if name.endswith((".csv", ".txt")):
        return "csv"
    if name.endswith(".xlsx"):
        return "xlsx"
    raise TableError(_("Upload a .csv or .xlsx file."))


def cell_text(value: Any) -> str:
    """A cell as text: whole numbers without ".0" (a phone typed into Excel is a number), dates as
    YYYY-MM-DD, NUL characters dropped (no database stores them)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if value.time() == datetime.time() else value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    text = str(value).replace("\x00", "")
    if text[:1] == "'" and text[1:2] in FORMULA_STARTS:  # escaped by an export (contacts.exports)
        text = text[1:]
    return text.strip()


def _check_encoding(binary: IO[bytes], encoding: str) -> None:
    """Decode the whole file a chunk at a time; a bad byte is reported with its row."""
    decoder = codecs.getincrementaldecoder(encoding)()
    newlines = 0
    while chunk := binary.read(_CHUNK):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            row = newlines + chunk[: exc.start].count(b"\n") + 1
            raise TableError(_("Row %(row)s is not valid %(encoding)s text: choose the file's encoding "
                               "(Excel on Windows saves Windows-1252).")
                             % {"row": row, "encoding": ENCODINGS.get(encoding, encoding)}) from exc
        newlines += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise TableError(_("The file ends in the middle of a character: it is not valid %(encoding)s text.")
                         % {"encoding": ENCODINGS.get(encoding, encoding)}) from exc
    binary.seek(0)


def _text(binary: IO[bytes], encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(binary, encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="")


def _csv_records(binary: IO[bytes], encoding: str, delimiter: str) -> Iterator[list[str]]:
    text = _text(binary, encoding)
    reader = csv.reader(text, delimiter=delimiter)
    number = 0
    try:
        for number, record in enumerate(reader, start=1):  # noqa: B007 (read in the except)
            yield record
    except csv.Error as exc:
        raise TableError(_("Row %(row)s cannot be read as CSV: %(error)s") % {"row": number + 1, "error": exc}) from exc
    except UnicodeDecodeError as exc:
        raise TableError(_("Row %(row)s is not valid %(encoding)s text.")
                         % {"row": number + 1, "encoding": ENCODINGS.get(encoding, encoding)}) from exc
    finally:
        with contextlib.suppress(ValueError):  # already closed by the caller when abandoned midway
            text.detach()  # leave the caller's file open (and closed by the caller)


def _headers(record: list[Any] | tuple[Any, ...]) -> list[str]:
    headers = [cell_text(cell)[:MAX_HEADER] for cell in record]
    while headers and not headers[-1]:
        headers.pop()
    if not any(headers):
        raise TableError(_("Row 1 must hold the column names, and it is empty."))
    if len(headers) > MAX_COLUMNS:
        raise TableError(_("Row 1 has %(count)s columns; at most %(max)s are read.")
                         % {"count": len(headers), "max": MAX_COLUMNS})
    return headers


def _open_workbook(binary: IO[bytes]) -> Any:
    import openpyxl  # only for .xlsx uploads
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        return openpyxl.load_workbook(binary, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise TableError(_("The file is not a valid .xlsx workbook.")) from exc


def _xlsx_records(binary: IO[bytes]) -> Iterator[tuple[Any, ...]]:
    workbook = _open_workbook(binary)
    try:
        if not workbook.worksheets:
            raise TableError(_("The workbook has no sheet."))
        number = 0
        try:
            for number, record in enumerate(workbook.worksheets[0].iter_rows(values_only=True), start=1):  # noqa: B007
                yield record
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
            raise TableError(_("Row %(row)s of the workbook cannot be read.") % {"row": number + 1}) from exc
    finally:
        workbook.close()


def _delimiter(binary: IO[bytes], encoding: str) -> str:
    """The separator the header line uses most (Excel in Spanish saves ";")."""
    text = _text(binary, encoding)
    try:
        first = text.readline(_CHUNK)
    except UnicodeDecodeError:
        first = ""
    finally:
        text.detach()
    binary.seek(0)
    return max(DELIMITERS, key=first.count) if any(d in first for d in DELIMITERS) else ","


def inspect_table(*, binary: IO[bytes], filename: str, encoding: str, max_rows: int) -> TableInfo:
    """Check the whole file (encoding, CSV syntax) and read its header and row count, streaming.
    Counting stops past `max_rows` (a small .xlsx may unpack to very many rows)."""
    file_format = format_of(filename)
    if file_format == "xlsx":
        records: Iterator[Any] = _xlsx_records(binary)
        delimiter = ","
        encoding = "utf-8"
    else:
        if encoding not in ENCODINGS:
            raise TableError(_("Choose one of the encodings offered."))
        _check_encoding(binary, encoding)
        delimiter = _delimiter(binary, encoding)
        records = _csv_records(binary, encoding, delimiter)
    header = next(records, None)
    if header is None:
        raise TableError(_("The file is empty."))
    headers = _headers(header)
    total = 0
    for _record in records:
        total += 1
        if total > max_rows:
            raise TableError(_("The file has more than %(max)s rows; import it in parts.") % {"max": max_rows})
    binary.seek(0)
    return TableInfo(file_format=file_format, encoding=encoding, delimiter=delimiter, headers=headers,
                     total_rows=total)


def read_rows(*, binary: IO[bytes], file_format: str, encoding: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells as text) of every data row, header left out, in file order."""
    records: Iterator[Any] = (_xlsx_records(binary) if file_format == "xlsx"
                              else _csv_records(binary, encoding, delimiter))
    next(records, None)
    for number, record in enumerate(records, start=2):
        yield number, [cell_text(cell) for cell in record[:MAX_COLUMNS]]

"""CSV export of the conversation report, streamed: all matching rows, constant memory."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from conversa.accounts.selectors import display_name
from conversa.campaigns.answers import labelled_answers
from conversa.inbox.models import Conversation

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): customer
# profile names and disposition names are typed by outsiders or admins, so they are neutralised.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# ...except a plain number ("+5491155550001", "-2.5"): it computes nothing, and a quote in front
# would spoil every phone of the file.
PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(text) else text


class _Echo:
    """csv.writer target that hands each line back instead of buffering it."""

    def write(self, value: str) -> str:
        return value


def header() -> list[str]:
    return [_("ID"), _("Agent"), _("Created"), _("Campaign"), _("Line"), _("Phone"), _("Customer"),
            _("Last interaction"), _("Status"), _("Messages"), _("Closed by system"), _("Disposition"),
            _("Notes"), _("Form answers"), _("Follow-up")]


def _local(value: Any) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def row(c: Conversation) -> list[str]:
    disposition = getattr(c, "disposition", None)
    # The identified contact's name; the WhatsApp profile name only for a customer never identified.
    customer = (c.contact.full_name if c.contact else "") or c.customer_profile_name
    answers = "; ".join(f"{label}: {value}" for label, value in labelled_answers(disposition)) if disposition else ""
    return [str(c.pk), display_name(c.agent) if c.agent else "", _local(c.created_at), c.campaign.name,
            c.line.number, c.customer_phone, customer, _local(c.last_message_at),
            str(c.get_status_display()), str(getattr(c, "message_count", "")),
            _("yes") if c.closed_by_system else _("no"), disposition.option.name if disposition else "",
            disposition.notes if disposition else "", answers,
            _local(disposition.follow_up_at) if disposition else ""]


def csv_lines(rows: QuerySet[Conversation]) -> Iterator[str]:
    """The file's lines, in the language active now: the body is produced later, while the
    response streams, possibly on another thread (ASGI) where that language is not active."""
    language = translation.get_language()

    def lines() -> Iterator[str]:
        with translation.override(language):
            writer = csv.writer(_Echo())
            yield "\ufeff"  # BOM: Excel then reads the file as UTF-8 (accents in names)
            yield writer.writerow([safe_cell(v) for v in header()])
            for conversation in rows.iterator(chunk_size=500):
                yield writer.writerow([safe_cell(v) for v in row(conversation)])

    return lines()

"""Reads of the audit log page: what happened to conversations and contacts (inbox.AuditEntry,
written by the actions) and every configuration change made in the back office (Django admin's own
LogEntry, written on each add, change and delete there), merged newest first.

Admins see everything; a supervisor sees the entries of her campaigns' conversations and contacts,
and the configuration changes of her campaigns."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from conversa.accounts.selectors import AnyUser, display_name, is_admin
from conversa.campaigns.models import Campaign
from conversa.contacts.models import Contact
from conversa.core.api import parse_id
from conversa.core.errors import InvalidInput
from conversa.inbox.models import AuditEntry
from conversa.reports.selectors import DateRange, parse_range, reportable_campaigns

CONFIG = "config"  # the kind filter's value for configuration changes
CONFIG_LABEL = gettext_lazy("Configuration change")
PAGE = 50
_ACTIONS = {ADDITION: gettext_lazy("added"), CHANGE: gettext_lazy("changed"), DELETION: gettext_lazy("deleted")}


@dataclass(frozen=True)
class AuditFilters:
    actor: int | None
    conversation: int | None
    contact: int | None
    kind: str
    range: DateRange
    page: int

    def query(self) -> dict[str, str]:
        """The filters as the page's form shows them."""
        local = datetime.timedelta(microseconds=1)
        return {"actor": str(self.actor or ""), "conversation": str(self.conversation or ""),
                "contact": str(self.contact or ""), "kind": self.kind,
                "from": self.range.start.date().isoformat(), "to": (self.range.end - local).date().isoformat()}


@dataclass(frozen=True)
class AuditRow:
    at: datetime.datetime
    actor: str
    kind: str
    kind_label: str
    conversation_id: int | None
    contact_id: int | None
    contact_label: str
    details: str


def kind_choices() -> list[tuple[str, str]]:
    return [*((str(k), str(label)) for k, label in AuditEntry.Kind.choices), (CONFIG, str(CONFIG_LABEL))]


def parse_filters(params: QueryDict) -> AuditFilters:
    """From the page's query string; a bad value is a 400 naming its field."""
    kind = params.get("kind", "")
    if kind and kind not in dict(kind_choices()):
        raise InvalidInput(_("kind must be one of the listed kinds."), field="kind")
    page = parse_id(params.get("page"), field="page") or 1
    return AuditFilters(actor=parse_id(params.get("actor"), field="actor"),
                        conversation=parse_id(params.get("conversation"), field="conversation"),
                        contact=parse_id(params.get("contact"), field="contact"), kind=kind,
                        range=parse_range(params.get("from"), params.get("to")), page=page)


def actor_choices(user: AnyUser) -> list[tuple[int, str]]:
    """Whom the actor filter offers: everyone for admins, her campaigns' people for a supervisor."""
    users = get_user_model().objects.all()
    if not is_admin(user):
        campaigns = reportable_campaigns(user)
        users = users.filter(Q(campaigns__in=campaigns) | Q(supervised_campaigns__in=campaigns)
                             | Q(pk=user.pk)).distinct()
    return sorted(((u.pk, display_name(u)) for u in users), key=lambda pair: pair[1].lower())


def _entries(user: AnyUser, f: AuditFilters) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.filter(created_at__gte=f.range.start, created_at__lt=f.range.end)
    if not is_admin(user):
        campaigns = reportable_campaigns(user)
        entries = entries.filter(Q(conversation__campaign__in=campaigns)
                                 | Q(conversation__isnull=True,
                                     contact__database__in=campaigns.values("contact_database")))
    if f.kind:
        entries = entries.filter(kind=f.kind)
    if f.actor:
        entries = entries.filter(actor_id=f.actor)
    if f.conversation:
        entries = entries.filter(conversation_id=f.conversation)
    if f.contact:
        entries = entries.filter(contact_id=f.contact)
    return entries.select_related("actor", "contact").order_by("-created_at", "-id")


def _config_changes(user: AnyUser, f: AuditFilters) -> QuerySet[LogEntry]:
    changes = LogEntry.objects.filter(action_time__gte=f.range.start, action_time__lt=f.range.end)
    if f.conversation or (f.kind and f.kind != CONFIG):
        return changes.none()
    if not is_admin(user):
        campaign_type = ContentType.objects.get_for_model(Campaign)
        mine = [str(pk) for pk in reportable_campaigns(user).values_list("pk", flat=True)]
        changes = changes.filter(content_type=campaign_type, object_id__in=mine)
    if f.actor:
        changes = changes.filter(user_id=f.actor)
    if f.contact:
        changes = changes.filter(content_type=ContentType.objects.get_for_model(Contact), object_id=str(f.contact))
    return changes.select_related("user", "content_type").order_by("-action_time", "-id")


def _details(data: dict[str, Any]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(data.items()))


def audit_page(user: AnyUser, f: AuditFilters) -> tuple[list[AuditRow], bool]:
    """One page of the merged log, newest first, and whether another follows."""
    wanted = f.page * PAGE + 1
    rows = [AuditRow(at=e.created_at, actor=display_name(e.actor) if e.actor else _("System"), kind=e.kind,
                     kind_label=str(e.get_kind_display()), conversation_id=e.conversation_id,
                     contact_id=e.contact_id,
                     contact_label=(e.contact.full_name or e.contact.phone) if e.contact else "",
                     details=_details(e.data))
            for e in _entries(user, f)[:wanted]]
    for change in _config_changes(user, f)[:wanted]:
        model = change.content_type.name if change.content_type else ""
        message = change.get_change_message()
        rows.append(AuditRow(
            at=change.action_time, actor=display_name(change.user), kind=CONFIG, kind_label=str(CONFIG_LABEL),
            conversation_id=None, contact_id=None, contact_label="",
            details=f"{model} “{change.object_repr}” {_ACTIONS.get(change.action_flag, '')}"
                    + (f": {message}" if message else "")))
    rows.sort(key=lambda r: r.at, reverse=True)
    start = (f.page - 1) * PAGE
    return rows[start:start + PAGE], len(rows) > start + PAGE

"""Reads of bulk sends: the plan of a send (who gets what, who is skipped and why, before anything
is stored — the preview and the job's creation share it), jobs a user may see, a job's progress,
its recipients, the reports' totals, and the job a conversation answers."""

from __future__ import annotations

import contextlib
import datetime
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from conversa.accounts.selectors import AnyUser, is_supervisor
from conversa.campaigns.models import Campaign
from conversa.campaigns.selectors import campaigns_for
from conversa.contacts.models import Contact, ContactDatabase
from conversa.contacts.phones import InvalidPhone, normalize_phone
from conversa.core.errors import InvalidInput, NotAllowed, NotFound
from conversa.inbox.actions.common import CheckedUpload
from conversa.inbox.actions.replies import approved_template, prepare_template, template_buttons, validate_params
from conversa.inbox.models import Conversation
from conversa.outreach import sources
from conversa.outreach.models import BulkRecipient, BulkSend, OptOut
from conversa.whatsapp.models import Line, MessageTemplate

MAX_RATE = 1000  # messages per second: Meta's highest standard tier
PREVIEW_ROWS = 5
CHUNK = 1000
Reason = BulkRecipient.Reason
Status = BulkRecipient.Status
DELIVERED_OR_LATER = [Status.DELIVERED, Status.READ]
SENT_OR_LATER = [Status.SENT, *DELIVERED_OR_LATER]


@dataclass
class BulkRequest:
    name: str
    line_id: int
    template_id: int
    params: list[str]
    source: str  # BulkSend.Source
    campaign_id: int | None = None  # where replies go; the line's campaign when None
    database_id: int | None = None  # the contact database (of one of her campaigns); the campaign's when None
    contact_filter: sources.ContactFilter = field(default_factory=sources.ContactFilter)
    csv_file: UploadedFile | None = None
    skip_open_conversations: bool = True
    rate_per_second: int | None = None
    header_file: UploadedFile | None = None  # for a template with a media header: every recipient's
    button_params: list[str] = field(default_factory=list)  # one per link button with a value


@dataclass
class PlannedRecipient:
    row: int
    phone: str
    contact_id: int | None
    params: list[str]
    body: str
    buttons: list[dict[str, object]] = field(default_factory=list)
    reason: str = ""  # why it is skipped ("" when it is sent)
    error: str = ""  # the parameter problem, for bad_parameters


@dataclass
class Plan:
    request: BulkRequest
    line: Line
    campaign: Campaign
    database: ContactDatabase
    template: MessageTemplate
    rate: int
    recipients: list[PlannedRecipient]
    header: CheckedUpload | None = None  # the template's media header file, checked

    @property
    def to_send(self) -> list[PlannedRecipient]:
        return [r for r in self.recipients if not r.reason]

    @property
    def skipped(self) -> Counter[str]:
        return Counter(r.reason for r in self.recipients if r.reason)

    def preview(self) -> list[PlannedRecipient]:
        return self.to_send[:PREVIEW_ROWS]


def require_bulk_access(user: AnyUser) -> None:
    if not is_supervisor(user):
        raise NotAllowed(_("Only supervisors and administrators can send bulk messages."))


def bulk_lines(user: AnyUser) -> QuerySet[Line]:
    return Line.objects.filter(active=True, campaign__in=campaigns_for(user)).select_related("campaign")


def plan_bulk_send(*, user: User, request: BulkRequest) -> Plan:
    """Check the request and work out every recipient: a 400 names a bad field."""
    require_bulk_access(user)
    if not request.name.strip():
        raise InvalidInput(_("Give the bulk send a name."), field="name")
    line = bulk_lines(user).select_related("provider").filter(pk=request.line_id).first()
    if line is None:
        raise NotFound(_("Line not found."))
    campaign = line.campaign
    if request.campaign_id is not None and request.campaign_id != line.campaign_id:
        chosen = campaigns_for(user).filter(pk=request.campaign_id).first()
        if chosen is None:
            raise InvalidInput(_("Campaign not found."), field="campaign")
        campaign = chosen
    template = approved_template(line, request.template_id)
    if len(request.params) != template.param_count:
        raise InvalidInput(_("Template '%(template)s' takes %(expected)d parameter(s); %(given)d given.")
                           % {"template": template.name, "expected": template.param_count,
                              "given": len(request.params)}, field="params")
    try:
        # The header file and the button values as given (each recipient's are checked in _planned).
        prepared = prepare_template(template=template, params=["x"] * template.param_count,
                                    header_file=request.header_file, button_params=request.button_params)
    except InvalidInput as exc:
        # "file" is the CSV of recipients here: name the header's own field.
        raise InvalidInput(exc.message, field="header_file" if exc.field == "file" else exc.field) from exc
    rate = request.rate_per_second or BulkSend._meta.get_field("rate_per_second").get_default()
    if not 1 <= rate <= MAX_RATE:
        raise InvalidInput(_("The rate must be between 1 and %(max)d messages per second.") % {"max": MAX_RATE},
                           field="rate_per_second")
    database = campaign.contact_database
    if request.database_id is not None and request.database_id != database.pk:
        found = ContactDatabase.objects.filter(pk=request.database_id, campaigns__in=campaigns_for(user)).first()
        if found is None:
            raise InvalidInput(_("Contact database not found."), field="database")
        database = found
    rows = _source_rows(request=request, database=database)
    recipients = list(_planned(rows, line=line, template=template, params=request.params,
                               button_params=request.button_params, skip_open=request.skip_open_conversations,
                               database_id=database.pk))
    if not recipients:
        raise InvalidInput(_("There is nobody to send to."), field="file" if request.csv_file else "source")
    return Plan(request=request, line=line, campaign=campaign, database=database, template=template,
                rate=int(rate), recipients=recipients, header=prepared.header)


def _source_rows(*, request: BulkRequest, database: ContactDatabase) -> list[sources.SourceRow]:
    if request.source == BulkSend.Source.CSV:
        if request.csv_file is None:
            raise InvalidInput(_("Upload a CSV file."), field="file")
        return sources.csv_rows(request.csv_file)[1]
    if request.source == BulkSend.Source.DATABASE:
        return list(sources.database_rows(database=database, contact_filter=request.contact_filter))
    raise InvalidInput(_("Choose the recipients: a contact database or a CSV file."), field="source")


def _planned(rows: list[sources.SourceRow], *, line: Line, template: MessageTemplate, params: list[str],
             button_params: list[str], skip_open: bool, database_id: int) -> Iterator[PlannedRecipient]:
    seen: set[str] = set()
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        phones: dict[int, str] = {}
        for source_row in chunk:
            with contextlib.suppress(InvalidPhone):
                phones[source_row.row] = normalize_phone(source_row.phone)
        valid = set(phones.values())
        opted_out = opted_out_phones(line=line, phones=valid)
        busy = phones_in_open_conversations(line=line, phones=valid) if skip_open else set()
        known = dict(Contact.objects.filter(database_id=database_id, phone__in=valid).values_list("phone", "pk"))
        for source_row in chunk:
            e164 = phones.get(source_row.row)
            if e164 is None:
                yield PlannedRecipient(row=source_row.row, phone=source_row.phone[:40], contact_id=None, params=[],
                                       body="", reason=Reason.INVALID_NUMBER)
                continue
            contact_id = source_row.contact_id or known.get(e164)
            values = {**source_row.values, "phone": e164}
            rendered = sources.render_params(params, values)
            planned = PlannedRecipient(row=source_row.row, phone=e164, contact_id=contact_id, params=rendered,
                                       body="")
            if e164 in seen:
                planned.reason = Reason.DUPLICATE
            elif e164 in opted_out:
                planned.reason = Reason.OPTED_OUT
            elif e164 in busy:
                planned.reason = Reason.OPEN_CONVERSATION
            else:
                try:
                    planned.params = validate_params(template, rendered)
                    planned.body = template.render(planned.params)
                    planned.buttons = template_buttons(
                        template=template, values=sources.render_params(button_params, values)).get("buttons", [])
                except InvalidInput as exc:
                    planned.reason, planned.error = Reason.BAD_PARAMETERS, exc.message
            seen.add(e164)
            yield planned


def opted_out_phones(*, line: Line | int, phones: Iterable[str]) -> set[str]:
    return set(OptOut.objects.filter(line=line, phone__in=list(phones)).values_list("phone", flat=True))


def phones_in_open_conversations(*, line: Line | int, phones: Iterable[str]) -> set[str]:
    return set(Conversation.objects.filter(line=line, customer_phone__in=list(phones))
               .exclude(status=Conversation.Status.CLOSED).values_list("customer_phone", flat=True))


# --------------------------------------------------------------------------------- jobs and progress
def jobs_for(user: AnyUser) -> QuerySet[BulkSend]:
    """The bulk sends a supervisor may see: those of lines of her campaigns (admins: all)."""
    if not is_supervisor(user):
        return BulkSend.objects.none()
    return BulkSend.objects.filter(line__campaign__in=campaigns_for(user)).select_related(
        "line", "campaign", "template", "created_by")


def get_job(*, user: AnyUser, job_id: int) -> BulkSend:
    require_bulk_access(user)
    job = jobs_for(user).filter(pk=job_id).first()
    if job is None:
        raise NotFound(_("Bulk send not found."))
    return job


@dataclass
class Progress:
    total: int
    pending: int  # not yet sent (queued or being sent)
    sent: int  # sent, delivered or read
    delivered: int  # delivered or read
    read: int
    failed: int
    unconfirmed: int
    skipped: int
    replies: int
    by_reason: dict[str, int]

    @property
    def done(self) -> int:
        return self.total - self.pending

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * self.done / self.total)

    @property
    def response_rate(self) -> float:
        return round(100 * self.replies / self.sent, 1) if self.sent else 0.0


def progress(*, job_ids: Iterable[int]) -> dict[int, Progress]:
    """Counts per job: one grouped query of the recipients and one of the replies."""
    ids = list(job_ids)
    counts: dict[int, Counter[str]] = {pk: Counter() for pk in ids}
    reasons: dict[int, Counter[str]] = {pk: Counter() for pk in ids}
    for job_id, status, reason, n in (BulkRecipient.objects.filter(job_id__in=ids)
                                      .values_list("job_id", "status", "reason").annotate(n=Count("id"))
                                      .order_by()):
        counts[job_id][status] += n
        if status == Status.SKIPPED:
            reasons[job_id][reason] += n
    replies = dict(BulkRecipient.objects.filter(job_id__in=ids, replied_at__isnull=False)
                   .values_list("job_id").annotate(n=Count("id")).order_by())
    result = {}
    for pk in ids:
        c = counts[pk]
        result[pk] = Progress(
            total=sum(c.values()), pending=c[Status.PENDING] + c[Status.SENDING],
            sent=sum(c[s] for s in SENT_OR_LATER), delivered=sum(c[s] for s in DELIVERED_OR_LATER),
            read=c[Status.READ], failed=c[Status.FAILED], unconfirmed=c[Status.UNCONFIRMED],
            skipped=c[Status.SKIPPED], replies=int(replies.get(pk, 0)), by_reason=dict(reasons[pk]))
    return result


def recipients_of(*, job: BulkSend, status: str = "") -> QuerySet[BulkRecipient]:
    rows = BulkRecipient.objects.filter(job=job).select_related("contact", "reply_conversation")
    if status == "sent":
        rows = rows.filter(status__in=SENT_OR_LATER)
    elif status:
        rows = rows.filter(status=status)
    return rows.order_by("row", "id")


def reply_job_for(*, conversation_id: int) -> BulkSend | None:
    """The bulk send a conversation answers (its customer's reply opened it), if any."""
    recipient = (BulkRecipient.objects.filter(reply_conversation_id=conversation_id).select_related("job")
                 .order_by("-replied_at").first())
    return recipient.job if recipient else None


def recipients_to_link(*, customers: Iterable[tuple[int, str]],
                       since: datetime.datetime) -> dict[tuple[int, str], BulkRecipient]:
    """For each (line id, phone): the latest bulk message sent to that customer on the line since
    `since`, not yet answered (customers without one are left out). One query for all of them (a
    webhook batch's new conversations), served by bulk_recipient_reply_idx."""
    phones: dict[int, set[str]] = {}
    for line_id, phone in customers:
        phones.setdefault(line_id, set()).add(phone)
    if not phones:
        return {}
    query = Q()
    for line_id, numbers in phones.items():
        query |= Q(line_id=line_id, phone__in=sorted(numbers))
    latest: dict[tuple[int, str], BulkRecipient] = {}
    for recipient in (BulkRecipient.objects.filter(query, sent_at__gte=since, replied_at__isnull=True)
                      .select_related("job__campaign").order_by("-sent_at", "-pk")):
        latest.setdefault((recipient.line_id, recipient.phone), recipient)
    return latest


@dataclass
class CampaignBulkTotals:
    campaign_id: int
    jobs: int
    recipients: int
    sent: int
    delivered: int
    read: int
    failed: int
    skipped: int
    replies: int

    @property
    def response_rate(self) -> float:
        return round(100 * self.replies / self.sent, 1) if self.sent else 0.0


def bulk_totals(*, campaign_ids: Iterable[int], start: datetime.datetime,
                end: datetime.datetime) -> dict[int, CampaignBulkTotals]:
    """The reports' figures of the bulk sends created in [start, end), by the campaign their
    replies go to: one grouped query."""
    ids = list(campaign_ids)
    rows = (BulkRecipient.objects.filter(job__campaign_id__in=ids, job__created_at__gte=start,
                                         job__created_at__lt=end)
            .values("job__campaign_id").order_by()
            .annotate(jobs=Count("job_id", distinct=True), recipients=Count("id"),
                      sent=Count("id", filter=Q(status__in=SENT_OR_LATER)),
                      delivered=Count("id", filter=Q(status__in=DELIVERED_OR_LATER)),
                      read=Count("id", filter=Q(status=Status.READ)),
                      failed=Count("id", filter=Q(status=Status.FAILED)),
                      skipped=Count("id", filter=Q(status=Status.SKIPPED)),
                      replies=Count("id", filter=Q(replied_at__isnull=False))))
    return {row["job__campaign_id"]: CampaignBulkTotals(
        campaign_id=row["job__campaign_id"], jobs=row["jobs"], recipients=row["recipients"], sent=row["sent"],
        delivered=row["delivered"], read=row["read"], failed=row["failed"], skipped=row["skipped"],
        replies=row["replies"]) for row in rows}

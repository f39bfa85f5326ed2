"""Reads for supervisors: report aggregates, the conversation report and the live snapshot.

Every figure comes from a fixed handful of queries over the whole campaign set and date range,
never one query per conversation, agent or campaign: Chatwoot's reports took tens of seconds at 50
agents (#12874) because they looped. The query count of `summary()` and `live_snapshot()` does not
depend on how many conversations, agents or campaigns there are (tests/reports/test_summary.py,
test_query_count_does_not_grow, holds this).

Nor does their cost grow with the whole history: message counts come from daily rollups
(reports.rollups) with only the days not rolled up counted from the messages, and conversation
figures from one slim row per conversation of the range (its first response stored on it,
`first_response_at`), read from one covering index on PostgreSQL (`conv_report_idx`). Durations
are computed in Python from those rows: datetime subtraction and medians differ between SQLite and
PostgreSQL, and a median needs the values anyway. That query's row count grows with the range,
its number does not.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from conversa.accounts.selectors import AnyUser, is_supervisor
from conversa.campaigns.models import Campaign, Disposition, DispositionOption
from conversa.campaigns.selectors import campaigns_for
from conversa.core.api import parse_id
from conversa.core.errors import InvalidInput, NotAllowed, NotFound
from conversa.inbox.models import AuditEntry, Conversation, Message
from conversa.reports import rollups

DEFAULT_DAYS = 7


# --------------------------------------------------------------------------- scope
@dataclass(frozen=True)
class DateRange:
    """[start, end): conversations and messages created in it count."""

    start: datetime
    end: datetime


# Years a report can ask for: enough for any real data, far from datetime's edges (where adding a
# day or changing zone overflows).
YEARS = range(1900, 9000)


def _parse_bound(raw: str, *, name: str, is_end: bool) -> datetime:
    value = raw.strip()
    invalid = InvalidInput(_("%(name)s must be a date (YYYY-MM-DD) or an ISO 8601 date-time.") % {"name": name},
                           field=name)
    try:
        # Impossible dates (02-30), hours (25:00) and offsets (+99:00) raise ValueError here.
        parsed_dt = parse_datetime(value) if ("T" in value or " " in value) else None
        parsed_d = None if parsed_dt is not None else parse_date(value)
    except ValueError:
        raise invalid from None
    day = parsed_dt.date() if parsed_dt is not None else parsed_d
    if day is None:
        raise invalid
    if day.year not in YEARS:
        raise InvalidInput(_("%(name)s must be a date between the years 1900 and 8999.") % {"name": name},
                           field=name)
    if parsed_dt is not None:
        return timezone.make_aware(parsed_dt) if timezone.is_naive(parsed_dt) else parsed_dt
    parsed_d = day
    # A date-only "to" means "through that day": people pick the last day they want to see.
    return _day_start(parsed_d + timedelta(days=1) if is_end else parsed_d)


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def parse_range(raw_from: str | None, raw_to: str | None, *, now: datetime | None = None) -> DateRange:
    """From query parameters. Dates are whole days in the server's time zone (`to` included);
    date-times are taken as given. Default: the last seven days, today included."""
    today = timezone.localdate(now or timezone.now())
    start = _parse_bound(raw_from, name="from", is_end=False) if raw_from else \
        _day_start(today - timedelta(days=DEFAULT_DAYS - 1))
    end = _parse_bound(raw_to, name="to", is_end=True) if raw_to else _day_start(today + timedelta(days=1))
    if start >= end:
        raise InvalidInput(_("The range is empty: “from” must be before “to”."), field="from")
    return DateRange(start, end)


def reportable_campaigns(user: AnyUser, campaign_id: Any = None) -> QuerySet[Campaign]:
    """The campaigns whose reports the user may read: supervisors their own, admins all."""
    if not is_supervisor(user):
        raise NotAllowed(_("Only supervisors and administrators can see reports."))
    campaigns = campaigns_for(user)
    pk = parse_id(campaign_id, field="campaign")
    if pk is not None:
        campaigns = campaigns.filter(pk=pk)
        if not campaigns.exists():
            # Same answer for "no such campaign" and "not yours": nothing leaks.
            raise NotFound(_("Campaign not found."))
    return campaigns


def _campaign_list(campaigns: QuerySet[Campaign]) -> list[tuple[int, str]]:
    return [(pk, name) for pk, name in campaigns.order_by("name").values_list("pk", "name")]


def _names(user_ids: Iterable[int]) -> dict[int, str]:
    rows = get_user_model().objects.filter(pk__in=set(user_ids)).values_list(
        "pk", "first_name", "last_name", "username")
    return {pk: (f"{first} {last}".strip() or username) for pk, first, last, username in rows}


# --------------------------------------------------------------------------- general report
@dataclass
class Durations:
    """Seconds; None when nothing was measured."""

    count: int = 0
    median: float | None = None
    average: float | None = None

    @classmethod
    def of(cls, seconds: list[float]) -> Durations:
        if not seconds:
            return cls()
        values = [s if s > 0.0 else 0.0 for s in seconds]  # clocks disagreeing never make it negative
        return cls(len(values), round(statistics.median(values), 1), round(statistics.fmean(values), 1))


@dataclass
class DispositionCount:
    option_id: int
    name: str
    positive: bool
    count: int


@dataclass
class AgentFigures:
    agent_id: int
    name: str
    conversations: int = 0
    messages_sent: int = 0
    closed: int = 0
    first_response_avg: float | None = None


@dataclass
class CampaignSummary:
    campaign_id: int
    name: str
    messages_received: int = 0
    messages_sent: int = 0
    conversations: int = 0
    conversations_inbound: int = 0
    conversations_outbound: int = 0
    attended: int = 0  # taken by an agent at some point (attended_at set)
    not_attended: int = 0  # still waiting in the general inbox
    closed: int = 0
    closed_by_system: int = 0
    expired: int = 0  # their 24 h window closed unanswered at least once (inbox.actions.expiry)
    dispositions: list[DispositionCount] = field(default_factory=list)
    not_dispositioned: int = 0
    first_response: Durations = field(default_factory=Durations)
    time_to_capture: Durations = field(default_factory=Durations)
    resolution: Durations = field(default_factory=Durations)
    agents: list[AgentFigures] = field(default_factory=list)


def _since_created(name: str) -> ExpressionWrapper:
    """How long after the conversation's creation `name` happened (None when it did not)."""
    return ExpressionWrapper(F(name) - F("created_at"), output_field=DurationField())


def summary(campaigns: QuerySet[Campaign], rng: DateRange) -> list[CampaignSummary]:
    """The general report, one entry per campaign. Conversations count when created in the range,
    messages when sent or received in it. Eight queries, whatever the volume; none reads messages
    of days that are rolled up (reports.rollups)."""
    by_campaign = {pk: CampaignSummary(pk, name) for pk, name in _campaign_list(campaigns)}
    ids = list(by_campaign)
    if not ids:
        return []
    agents: dict[tuple[int, int], AgentFigures] = {}

    def agent(campaign_id: int, agent_id: int) -> AgentFigures:
        key = (campaign_id, agent_id)
        if key not in agents:
            agents[key] = AgentFigures(agent_id, "")
        return agents[key]

    counts = rollups.message_counts(campaign_ids=ids, start=rng.start, end=rng.end)
    for (campaign_id, direction, sender_id), n in counts.items():
        if direction == Message.Direction.INBOUND:
            by_campaign[campaign_id].messages_received += n
        else:
            by_campaign[campaign_id].messages_sent += n  # system messages (welcome, goodbye) included
            if sender_id is not None:
                agent(campaign_id, sender_id).messages_sent += n

    # One slim row per conversation, read from conv_report_idx alone on PostgreSQL; the counts and
    # durations are summed here. Durations are subtracted by the database: loading timestamps into
    # Python costs far more than loading intervals. First response = the first message a person
    # wrote (stored as first_response_at; welcome and goodbye messages have no sender). Outbound
    # conversations start with the agent's template, so first response and capture time are
    # measured on inbound ones.
    conversations = Conversation.objects.filter(campaign_id__in=ids, created_at__gte=rng.start,
                                                created_at__lt=rng.end)
    rows = conversations.values_list(
        "campaign_id", "agent_id", "status", "is_outbound", "closed_by_system", "expired_at",
        _since_created("attended_at"), _since_created("closed_at"), _since_created("first_response_at"),
    ).order_by()
    first: dict[int, list[float]] = defaultdict(list)
    capture: dict[int, list[float]] = defaultdict(list)
    resolution: dict[int, list[float]] = defaultdict(list)
    agent_first: dict[tuple[int, int], list[float]] = defaultdict(list)
    for campaign_id, agent_id, status, is_outbound, by_system, expired_at, to_capture, to_close, to_reply in rows:
        s = by_campaign[campaign_id]
        s.conversations += 1
        closed = status == Conversation.Status.CLOSED
        if is_outbound:
            s.conversations_outbound += 1
        if to_capture is not None:
            s.attended += 1
        if status == Conversation.Status.NEW:
            s.not_attended += 1
        if closed:
            s.closed += 1
        if by_system:
            s.closed_by_system += 1
        if expired_at is not None:
            s.expired += 1
        if agent_id is not None:
            a = agent(campaign_id, agent_id)
            a.conversations += 1
            a.closed += closed
        if to_close is not None:
            resolution[campaign_id].append(to_close.total_seconds())
        if is_outbound:
            continue
        if to_capture is not None:
            capture[campaign_id].append(to_capture.total_seconds())
        if to_reply is not None:
            reply = to_reply.total_seconds()
            first[campaign_id].append(reply)
            if agent_id is not None:
                agent_first[(campaign_id, agent_id)].append(reply)
    for s in by_campaign.values():
        s.conversations_inbound = s.conversations - s.conversations_outbound

    # A disposition is recorded when its conversation closes, in the conversation's campaign: none of
    # a conversation created in the range is older than the range, so the created_at bound lets its
    # index skip older history.
    disposition_counts: dict[tuple[int, int], int] = {}
    dispositioned = (Disposition.objects.filter(created_at__gte=rng.start, campaign_id__in=ids,
                                                conversation__in=conversations.values("pk"))
                     .values_list("campaign_id", "option_id").annotate(n=Count("id")).order_by())
    for campaign_id, option_id, n in dispositioned:
        disposition_counts[(campaign_id, option_id)] = n
        by_campaign[campaign_id].not_dispositioned -= n
    for s in by_campaign.values():
        s.not_dispositioned += s.conversations
    options = DispositionOption.objects.filter(campaign_id__in=ids).order_by("order", "name")
    for option in options.values("pk", "campaign_id", "name", "positive", "active"):
        n = disposition_counts.get((option["campaign_id"], option["pk"]), 0)
        if option["active"] or n:  # a retired option still shows while it has history in range
            by_campaign[option["campaign_id"]].dispositions.append(
                DispositionCount(option["pk"], option["name"], option["positive"], n))

    # A transferred conversation counts for every agent who held it (closing and first response stay
    # with whoever did them); the transfers' audit entries say who held it before its last agent.
    for campaign_id, agent_id in _earlier_holders(campaign_ids=ids, rng=rng):
        agent(campaign_id, agent_id).conversations += 1

    names = _names(agent_id for _c, agent_id in agents)
    for (campaign_id, agent_id), figures in sorted(agents.items()):
        figures.name = names.get(agent_id, str(agent_id))
        values = agent_first.get((campaign_id, agent_id))
        figures.first_response_avg = Durations.of(values).average if values else None
        by_campaign[campaign_id].agents.append(figures)
    for campaign_id, s in by_campaign.items():
        s.first_response = Durations.of(first[campaign_id])
        s.time_to_capture = Durations.of(capture[campaign_id])
        s.resolution = Durations.of(resolution[campaign_id])
        s.agents.sort(key=lambda a: (-a.conversations, a.name))
    return list(by_campaign.values())


def _earlier_holders(*, campaign_ids: list[int], rng: DateRange) -> list[tuple[int, int]]:
    """(campaign, agent) once per conversation of the campaigns created in the range and agent who
    held it before a transfer and does not hold it now: one query over the transfers' audit entries.
    A transfer comes after its conversation was created, so only entries from the range's start on
    are read (audit_entry.created_at's index), each joined to its conversation by key — not a
    semi-join against every conversation of the range (100,000 rows in a month of a busy line)."""
    entries = (AuditEntry.objects.filter(kind=AuditEntry.Kind.TRANSFERRED, created_at__gte=rng.start,
                                         conversation__campaign_id__in=campaign_ids,
                                         conversation__created_at__gte=rng.start,
                                         conversation__created_at__lt=rng.end)
               .values_list("conversation_id", "conversation__campaign_id", "conversation__agent_id", "data")
               .order_by())
    held: set[tuple[int, int, int]] = set()
    for conversation_id, campaign_id, current, data in entries:
        for key in ("from_agent", "to_agent"):
            agent_id = (data or {}).get(key)
            if isinstance(agent_id, int) and agent_id != current:
                held.add((conversation_id, campaign_id, agent_id))
    return [(campaign_id, agent_id) for _conversation, campaign_id, agent_id in held]


# --------------------------------------------------------------------------- conversation report
def conversation_rows(campaigns: QuerySet[Campaign], rng: DateRange, *, agent_id: Any = None,
                      phone: str = "") -> QuerySet[Conversation]:
    """The conversation report: one row per conversation created in the range, newest first,
    with everything a row shows joined in (no per-row queries). Its message count is a subquery per
    row shown (a page of 50, an index range each), not a join of every message in the range that
    counting the pages would repeat."""
    campaign_ids = list(campaigns.values_list("pk", flat=True))  # literal ids: conv_report_idx serves them
    qs = Conversation.objects.filter(campaign_id__in=campaign_ids, created_at__gte=rng.start,
                                     created_at__lt=rng.end)
    agent_pk = parse_id(agent_id, field="agent")
    if agent_pk is not None:
        qs = qs.filter(agent_id=agent_pk)
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits:
        qs = qs.filter(customer_phone__contains=digits)
    return (qs.select_related("agent", "campaign", "line", "contact", "disposition__option")
            .annotate(message_count=Coalesce(Subquery(
                Message.objects.filter(conversation=OuterRef("pk")).order_by().values("conversation")
                .annotate(n=Count("id")).values("n")), 0))
            .order_by("-created_at", "-id"))


def report_agents(campaigns: QuerySet[Campaign]) -> list[tuple[int, str]]:
    """Agents of the campaigns, for the report's agent filter."""
    ids = set(Campaign.agents.through.objects.filter(campaign_id__in=campaigns.values("pk"))
              .values_list("user_id", flat=True))
    return sorted(_names(ids).items(), key=lambda item: item[1].lower())


# --------------------------------------------------------------------------- live snapshot
@dataclass
class AgentLive:
    agent_id: int
    name: str
    status: str
    open: int
    capacity: int
    pause_reason: str = ""  # the admin's reason, while paused


@dataclass
class CampaignLive:
    campaign_id: int
    name: str
    waiting: int = 0
    longest_wait_seconds: int | None = None
    attended: int = 0
    agents_by_status: dict[str, int] = field(default_factory=dict)
    agents: list[AgentLive] = field(default_factory=list)


AGENT_STATUSES = ("ready", "paused", "offline")


def live_snapshot(campaigns: QuerySet[Campaign], *, now: datetime | None = None) -> list[CampaignLive]:
    """What is happening right now, per campaign. Five queries, whatever the volume."""
    now = now or timezone.now()
    by_campaign = {pk: CampaignLive(pk, name, agents_by_status=dict.fromkeys(AGENT_STATUSES, 0))
                   for pk, name in _campaign_list(campaigns)}
    ids = list(by_campaign)
    if not ids:
        return []
    waiting = (Conversation.objects.filter(campaign_id__in=ids, status=Conversation.Status.NEW,
                                           agent__isnull=True)
               .values_list("campaign_id").annotate(n=Count("id"), oldest=Min("created_at")).order_by())
    for campaign_id, n, oldest in waiting:
        by_campaign[campaign_id].waiting = n
        by_campaign[campaign_id].longest_wait_seconds = int(max((now - oldest).total_seconds(), 0))
    attended = (Conversation.objects.filter(campaign_id__in=ids, status=Conversation.Status.ATTENDED)
                .values_list("campaign_id").annotate(n=Count("id")).order_by())
    for campaign_id, n in attended:
        by_campaign[campaign_id].attended = n

    members = list(Campaign.agents.through.objects.filter(campaign_id__in=ids, user__is_active=True)
                   .values_list("campaign_id", "user_id", "user__first_name", "user__last_name",
                                "user__username", "user__profile__status", "user__profile__capacity",
                                "user__profile__pause_reason__name"))
    # Capacity is per agent across campaigns, so her open conversations count everywhere.
    open_counts = dict(Conversation.objects.filter(agent_id__in={m[1] for m in members},
                                                   status=Conversation.Status.ATTENDED)
                       .values_list("agent_id").annotate(n=Count("id")).order_by())
    for campaign_id, user_id, first, last, username, status, capacity, reason in members:
        status = status or "offline"
        live = by_campaign[campaign_id]
        live.agents.append(AgentLive(user_id, f"{first} {last}".strip() or username, status,
                                     open_counts.get(user_id, 0), capacity or 0,
                                     (reason or "") if status == "paused" else ""))
        live.agents_by_status[status] = live.agents_by_status.get(status, 0) + 1
    order = {s: i for i, s in enumerate(AGENT_STATUSES)}
    for live in by_campaign.values():
        live.agents.sort(key=lambda a: (order.get(a.status, 9), a.name.lower()))
    return list(by_campaign.values())

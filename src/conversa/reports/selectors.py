"""Reads for supervisors: report aggregates, the conversation report and the live snapshot.

Every figure comes from a fixed handful of queries over the whole campaign set and date range,
never one query per conversation, agent or campaign: Chatwoot's reports took tens of seconds at 50
agents (#12874) because they looped. The query count of `summary()` and `live_snapshot()` does not
depend on how many conversations, agents or campaigns there are (tests/reports/test_summary.py,
test_query_count_does_not_grow, holds this).

Nor does their cost grow with the whole history: message counts come from daily and hourly
rollups (reports.rollups) with only the last unsettled hour or two (and anything not rolled up)
counted from the messages, and conversation figures are aggregated by the database over the
range's conversations (their first response stored on them, `first_response_at`), read from one
covering index on PostgreSQL (`conv_report_idx`): a few dozen rows come back, not one per
conversation. Durations are subtracted and clamped at zero by the database and their medians are
PostgreSQL's percentile_cont (a Python aggregate registered on SQLite, which has none). That
work grows with the range's conversations; the number of queries does not.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    FilteredRelation,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from conversa.accounts.selectors import AnyUser, is_supervisor
from conversa.campaigns.models import Campaign
from conversa.campaigns.selectors import campaigns_for
from conversa.core.api import parse_id
from conversa.core.errors import InvalidInput, NotAllowed, NotFound
from conversa.inbox.models import AuditEntry, Conversation, Message
from conversa.reports import rollups
from conversa.reports.aggregates import Median

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
    def of_aggregate(cls, count: int, median: timedelta | None, total: timedelta | None) -> Durations:
        """From the database's count, median and sum of the (clamped) durations."""
        if not count or total is None:
            return cls()
        return cls(count, round(median.total_seconds(), 1) if median is not None else None,
                   round(total.total_seconds() / count, 1))


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


def _since_created(name: str) -> Case:
    """How long after the conversation's creation `name` happened (None when it did not; never
    negative: clocks disagreeing make it zero)."""
    return Case(When(**{f"{name}__lt": F("created_at")}, then=Value(timedelta(0))),
                default=ExpressionWrapper(F(name) - F("created_at"), output_field=DurationField()),
                output_field=DurationField())


def summary(campaigns: QuerySet[Campaign], rng: DateRange) -> list[CampaignSummary]:
    """The general report, one entry per campaign. Conversations count when created in the range,
    messages when sent or received in it. Ten queries at most, whatever the volume; none reads
    messages of days or hours that are rolled up (reports.rollups)."""
    # The campaigns with their disposition options, in one query.
    by_campaign: dict[int, CampaignSummary] = {}
    options: list[tuple[int, int, str, bool, bool]] = []
    for pk, name, option_id, option_name, positive, active in (
            Campaign.objects.filter(pk__in=campaigns.values("pk"))
            .order_by("name", "pk", "disposition_options__order", "disposition_options__name")
            .values_list("pk", "name", "disposition_options__pk", "disposition_options__name",
                         "disposition_options__positive", "disposition_options__active")):
        by_campaign.setdefault(pk, CampaignSummary(pk, name))
        if option_id is not None:
            options.append((pk, option_id, option_name, positive, active))
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

    # The conversation figures are aggregated by the database from conv_report_idx (PostgreSQL reads
    # that index alone), grouped by campaign, agent and disposition: a few dozen rows, not one per
    # conversation. Durations are subtracted by the database and clamped at zero (clocks disagreeing
    # never make one negative). First response = the first message a person wrote (stored as
    # first_response_at; welcome and goodbye messages have no sender). Outbound conversations start
    # with the agent's template, so first response and capture time are measured on inbound ones.
    # A disposition is recorded when its conversation closes, in the conversation's campaign: none of
    # a conversation created in the range is older than the range, so the created_at bound lets the
    # join skip older history.
    conversations = Conversation.objects.filter(campaign_id__in=ids, created_at__gte=rng.start,
                                                created_at__lt=rng.end)
    inbound = Q(is_outbound=False)
    groups = (conversations
              .annotate(recorded=FilteredRelation("disposition", condition=Q(
                  disposition__campaign_id__in=ids, disposition__created_at__gte=rng.start)))
              .values_list("campaign_id", "agent_id", "recorded__campaign_id", "recorded__option_id")
              .annotate(n=Count("pk"), outbound=Count("pk", filter=Q(is_outbound=True)),
                        attended=Count("attended_at"), new=Count("pk", filter=Q(status=Conversation.Status.NEW)),
                        closed=Count("pk", filter=Q(status=Conversation.Status.CLOSED)),
                        by_system=Count("pk", filter=Q(closed_by_system=True)), expired=Count("expired_at"),
                        replied=Count("first_response_at", filter=inbound),
                        reply_total=Sum(_since_created("first_response_at"), filter=inbound))
              .order_by())
    disposition_counts: dict[tuple[int, int], int] = defaultdict(int)
    agent_reply: dict[tuple[int, int], tuple[int, timedelta]] = {}
    for (campaign_id, agent_id, disposition_campaign, option_id, n, outbound, attended, new, closed, by_system,
         expired, replied, reply_total) in groups:
        s = by_campaign[campaign_id]
        s.conversations += n
        s.conversations_outbound += outbound
        s.attended += attended
        s.not_attended += new
        s.closed += closed
        s.closed_by_system += by_system
        s.expired += expired
        if option_id is not None:
            disposition_counts[(disposition_campaign, option_id)] += n
            by_campaign[disposition_campaign].not_dispositioned -= n
        if agent_id is not None:
            a = agent(campaign_id, agent_id)
            a.conversations += n
            a.closed += closed
            if replied:
                count, total = agent_reply.get((campaign_id, agent_id), (0, timedelta(0)))
                agent_reply[(campaign_id, agent_id)] = (count + replied, total + reply_total)
    for s in by_campaign.values():
        s.conversations_inbound = s.conversations - s.conversations_outbound
        s.not_dispositioned += s.conversations

    # Medians need every value: the database sorts them (a median aggregate per campaign).
    durations = (conversations.values_list("campaign_id").annotate(
        capture_n=Count("attended_at", filter=inbound),
        capture_median=Median(_since_created("attended_at"), filter=inbound),
        capture_total=Sum(_since_created("attended_at"), filter=inbound),
        close_n=Count("closed_at"), close_median=Median(_since_created("closed_at")),
        close_total=Sum(_since_created("closed_at")),
        reply_n=Count("first_response_at", filter=inbound),
        reply_median=Median(_since_created("first_response_at"), filter=inbound),
        reply_total=Sum(_since_created("first_response_at"), filter=inbound),
    ).order_by())
    for campaign_id, *aggregates in durations:
        s = by_campaign[campaign_id]
        s.time_to_capture = Durations.of_aggregate(*aggregates[0:3])
        s.resolution = Durations.of_aggregate(*aggregates[3:6])
        s.first_response = Durations.of_aggregate(*aggregates[6:9])

    for campaign_id, option_id, option_name, positive, active in options:
        n = disposition_counts.get((campaign_id, option_id), 0)
        if active or n:  # a retired option still shows while it has history in range
            by_campaign[campaign_id].dispositions.append(DispositionCount(option_id, option_name, positive, n))

    # A transferred conversation counts for every agent who held it (closing and first response stay
    # with whoever did them); the transfers' audit entries say who held it before its last agent.
    for campaign_id, agent_id in _earlier_holders(campaign_ids=ids, rng=rng):
        agent(campaign_id, agent_id).conversations += 1

    names = _names(agent_id for _c, agent_id in agents)
    for (campaign_id, agent_id), figures in sorted(agents.items()):
        figures.name = names.get(agent_id, str(agent_id))
        replies = agent_reply.get((campaign_id, agent_id))
        figures.first_response_avg = Durations.of_aggregate(replies[0], None, replies[1]).average if replies else None
        by_campaign[campaign_id].agents.append(figures)
    for s in by_campaign.values():
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


# What each row of `_live_counts` counts: a campaign's waiting conversations, or a campaign's attended
# ones held by one agent.
_WAITING, _ATTENDED = 0, 1


def _live_counts(*, campaign_ids: list[int],
                 agent_ids: set[int]) -> list[tuple[int, int, int | None, int, datetime | None]]:
    """(kind, campaign, agent, count, oldest creation): the campaigns' waiting conversations, and
    the attended ones of the campaigns or of the agents by campaign and agent — one statement (one
    round trip), reading each open conversation once (decisions #70). Waiting is `COUNT(*)` of
    `conv_new_by_campaign_idx`, which includes `created_at` (an index-only scan, visiting the table
    only for pages changed since the last vacuum); attended rows are few (open ones), read once
    for both the campaigns' and the agents' figures."""
    waiting = (Conversation.objects.filter(campaign_id__in=campaign_ids, status=Conversation.Status.NEW,
                                           agent__isnull=True).order_by()
               .values_list("campaign_id")
               .annotate(kind=Value(_WAITING), agent=Value(None, output_field=IntegerField()), n=Count("*"),
                         oldest=Min("created_at")))
    mine = Q(campaign_id__in=campaign_ids) | Q(agent_id__in=agent_ids) if agent_ids else Q(campaign_id__in=campaign_ids)
    attended = (Conversation.objects.filter(mine, status=Conversation.Status.ATTENDED).order_by()
                .values_list("campaign_id")
                .annotate(kind=Value(_ATTENDED), agent=F("agent_id"), n=Count("*"),
                          oldest=Value(None, output_field=DateTimeField())))
    return [(kind, campaign, agent, n, oldest) for campaign, kind, agent, n, oldest
            in waiting.union(attended, all=True)]


def live_snapshot(campaigns: QuerySet[Campaign], *, now: datetime | None = None) -> list[CampaignLive]:
    """What is happening right now, per campaign. Three queries, whatever the volume: the
    campaigns, their agents, and every count (`_live_counts`)."""
    now = now or timezone.now()
    by_campaign = {pk: CampaignLive(pk, name, agents_by_status=dict.fromkeys(AGENT_STATUSES, 0))
                   for pk, name in _campaign_list(campaigns)}
    ids = list(by_campaign)
    if not ids:
        return []
    members = list(Campaign.agents.through.objects.filter(campaign_id__in=ids, user__is_active=True)
                   .values_list("campaign_id", "user_id", "user__first_name", "user__last_name",
                                "user__username", "user__profile__status", "user__profile__capacity",
                                "user__profile__pause_reason__name"))
    # Capacity is per agent across campaigns, so her open conversations count everywhere.
    agent_ids = {m[1] for m in members}
    open_counts: dict[int, int] = defaultdict(int)
    for kind, campaign_id, agent_id, n, oldest in _live_counts(campaign_ids=ids, agent_ids=agent_ids):
        if kind == _WAITING:
            by_campaign[campaign_id].waiting = n
            assert oldest is not None  # the oldest of at least one row
            by_campaign[campaign_id].longest_wait_seconds = int(max((now - oldest).total_seconds(), 0))
            continue
        if campaign_id in by_campaign:
            by_campaign[campaign_id].attended += n
        if agent_id in agent_ids:
            open_counts[agent_id] += n
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

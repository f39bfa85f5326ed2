"""The back office's setup checklist (admin home): provider → line → time group → contact database
→ campaign → agents, each step done or saying what is missing, with a link to its form. Reads only;
it spans every app, so it lives in the top layer."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db.models import Count, Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

from conversa.accounts.models import WHATSAPP_SKILL, AgentProfile
from conversa.campaigns.models import Campaign, TimeGroup
from conversa.contacts.models import ContactDatabase
from conversa.whatsapp.admin import webhook_url
from conversa.whatsapp.models import Line, MessageTemplate, Provider


@dataclass(frozen=True)
class SetupStep:
    key: str
    title: str
    done: bool
    url: str  # its form: "add" while there is none, else the list
    link_text: str
    missing: list[str] = field(default_factory=list)  # what is still to do, in words
    notes: list[tuple[str, str]] = field(default_factory=list)  # (label, value) shown beside it (webhook URLs)


def _form(model: type, *, exists: bool) -> str:
    meta = model._meta  # type: ignore[attr-defined]
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{'changelist' if exists else 'add'}")


def _step(key: str, title: str, model: type, *, exists: bool, missing: list[str],
          notes: list[tuple[str, str]] | None = None) -> SetupStep:
    return SetupStep(key=key, title=title, done=not missing, url=_form(model, exists=exists),
                     link_text=_("Open") if exists else _("Add"), missing=missing, notes=notes or [])


def _provider() -> SetupStep:
    exists = Provider.objects.exists()
    missing = [] if exists else [_("No provider yet: add Meta, GupShup (with their credentials) or the sandbox.")]
    return _step("provider", _("WhatsApp provider"), Provider, exists=exists, missing=missing)


def _line(request: HttpRequest) -> SetupStep:
    lines = list(Line.objects.select_related("provider", "campaign").order_by("number"))
    missing = [] if lines else [_("No line yet: add the WhatsApp number, its provider and the campaign it "
                                  "leads to.")]
    approved = set(MessageTemplate.objects.filter(status=MessageTemplate.Status.APPROVED)
                   .values_list("line_id", flat=True).distinct())
    for line in lines:
        if not line.active:
            missing.append(_("Line %(number)s is not active.") % {"number": line.number})
        elif line.pk not in approved:
            missing.append(_("Line %(number)s has no approved template (needed to start conversations and "
                             "after 24 hours): sync them from the provider.") % {"number": line.number})
    # Where the provider must send this line's webhooks, on the address the administrator browses.
    notes = [(_("Webhook URL of %(number)s") % {"number": line.number}, webhook_url(line, request))
             for line in lines]
    return _step("line", _("Line"), Line, exists=bool(lines), missing=missing, notes=notes)


def _time_group() -> SetupStep:
    groups = list(TimeGroup.objects.annotate(n=Count("ranges")).order_by("name"))
    missing = [] if groups else [_("No time group yet: add the business hours your lines keep (a line "
                                   "without one is always open).")]
    missing += [_("Time group %(name)s has no range: lines using it are always out of hours.")
                % {"name": g.name} for g in groups if not g.n]  # type: ignore[attr-defined]
    return _step("time_group", _("Time group (business hours)"), TimeGroup, exists=bool(groups), missing=missing)


def _contact_database() -> SetupStep:
    exists = ContactDatabase.objects.exists()
    missing = [] if exists else [_("No contact database yet: add one (its custom columns) for your campaigns.")]
    return _step("contact_database", _("Contact database"), ContactDatabase, exists=exists, missing=missing)


def _campaign() -> SetupStep:
    campaigns = list(Campaign.objects.filter(active=True).annotate(
        options=Count("disposition_options", filter=Q(disposition_options__active=True))).order_by("name"))
    missing = [] if campaigns else [_("No active campaign yet: add one with its contact database and "
                                      "dispositions.")]
    with_line = set(Line.objects.values_list("campaign_id", flat=True))
    for c in campaigns:
        if not c.options:  # type: ignore[attr-defined]
            missing.append(_("Campaign %(name)s has no disposition options: agents cannot close its "
                             "conversations.") % {"name": c.name})
        if not c.whatsapp_enabled:
            missing.append(_("Campaign %(name)s has WhatsApp disabled.") % {"name": c.name})
        if c.pk not in with_line:
            missing.append(_("No line leads to campaign %(name)s.") % {"name": c.name})
    return _step("campaign", _("Campaign"), Campaign, exists=bool(campaigns), missing=missing)


def _agents() -> SetupStep:
    profiles = list(AgentProfile.objects.select_related("group").filter(
        role=AgentProfile.Role.AGENT, user__is_active=True))
    skilled = {p.user_id for p in profiles if p.group and p.group.has_skill(WHATSAPP_SKILL)}
    missing = [] if skilled else [_("No agent with the WhatsApp skill yet: add users with an agent profile "
                                    "in a group whose skills include \"whatsapp\".")]
    for campaign in Campaign.objects.filter(active=True, whatsapp_enabled=True).prefetch_related("agents"):
        if not any(a.pk in skilled for a in campaign.agents.all()):
            missing.append(_("Campaign %(name)s has no agent with the WhatsApp skill.") % {"name": campaign.name})
    return _step("agents", _("Agents"), User, exists=bool(profiles), missing=missing)


def setup_checklist(request: HttpRequest) -> list[SetupStep]:
    return [_provider(), _line(request), _time_group(), _contact_database(), _campaign(), _agents()]

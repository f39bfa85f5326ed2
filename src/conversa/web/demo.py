"""Demo data: users, campaigns, contact databases, a sandbox provider, lines and templates.

Idempotent: every object is looked up by a natural key, so loading twice changes nothing.
"""

from __future__ import annotations

import datetime

from django.contrib.auth.models import User
from django.db import transaction

from conversa.accounts.models import WHATSAPP_SKILL, AgentGroup, AgentProfile, PauseReason
from conversa.campaigns.models import Campaign, DispositionOption, QuickReply, TimeGroup, TimeRange
from conversa.contacts.models import Contact, ContactDatabase
from conversa.whatsapp.models import InteractiveMenu, Line, MenuOption, MessageTemplate, Provider

DEMO_PASSWORD = "demo"


def _user(username: str, first: str, last: str, *, superuser: bool = False) -> User:
    user, created = User.objects.get_or_create(
        username=username, defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com",
                                     "is_staff": superuser, "is_superuser": superuser})
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save()
    return user


@transaction.atomic
def load_demo() -> dict[str, int]:
    whatsapp_agents, _ = AgentGroup.objects.get_or_create(name="WhatsApp agents",
                                                          defaults={"skills": [WHATSAPP_SKILL]})
    voice_agents, _ = AgentGroup.objects.get_or_create(name="Voice agents", defaults={"skills": ["voice"]})

    _user("admin", "Ada", "Admin", superuser=True)
    supervisor = _user("supervisor", "Sofía", "Supervisor")
    AgentProfile.objects.get_or_create(user=supervisor, defaults={"role": AgentProfile.Role.SUPERVISOR,
                                                                   "group": whatsapp_agents})
    agents = {}
    for n, (first, last) in enumerate([("Laura", "Gómez"), ("Martín", "Pérez"), ("Carla", "Ruiz"),
                                       ("Diego", "Sosa")], start=1):
        user = _user(f"agent{n}", first, last)
        AgentProfile.objects.get_or_create(user=user, defaults={
            "group": whatsapp_agents if n <= 3 else voice_agents})  # offline until she opens the console
        agents[n] = user
    for order, (reason, productive) in enumerate([("Break", False), ("Lunch", False), ("Training", True),
                                                   ("Back office", True)]):
        PauseReason.objects.get_or_create(name=reason, defaults={"productive": productive, "order": order})

    fields = [
        {"name": "dni", "label": "DNI", "type": "text", "required": False},
        {"name": "city", "label": "City", "type": "text", "required": False},
    ]
    sales_db, _ = ContactDatabase.objects.get_or_create(name="Sales contacts", defaults={"fields": fields})
    support_db, _ = ContactDatabase.objects.get_or_create(name="Support contacts", defaults={"fields": [
        {"name": "customer_number", "label": "Customer number", "type": "text", "required": False},
        {"name": "plan", "label": "Plan", "type": "choice", "choices": ["basic", "pro", "enterprise"],
         "required": False},
    ]})
    Contact.objects.get_or_create(database=sales_db, phone="+5491155550009",
                                  defaults={"first_name": "Julieta", "last_name": "Fernández",
                                            "email": "julieta@example.com", "custom": {"city": "Rosario"}})

    sales, _ = Campaign.objects.get_or_create(name="Sales", defaults={"contact_database": sales_db})
    support, _ = Campaign.objects.get_or_create(name="Support", defaults={"contact_database": support_db})
    sales.agents.add(agents[1], agents[2], agents[3], agents[4])
    support.agents.add(agents[3])
    sales.supervisors.add(supervisor)
    support.supervisors.add(supervisor)

    disposition_setup: list[tuple[Campaign, list[tuple[str, str, bool, list[dict[str, object]]]]]] = [
        (sales, [("Sale", "plain", True, []), ("Interested, call back", "schedule", False, []),
                 ("Not interested", "plain", False, []),
                 ("Quote sent", "management", True, [
                     {"name": "amount", "label": "Amount", "type": "number", "required": True},
                     {"name": "product", "label": "Product", "type": "text", "required": False}])]),
        (support, [("Solved", "plain", True, []), ("Escalated", "plain", False, []),
                   ("Wrong number", "plain", False, [])]),
    ]
    for campaign, options in disposition_setup:
        for order, (name, kind, positive, form) in enumerate(options):
            DispositionOption.objects.get_or_create(campaign=campaign, name=name, defaults={
                "kind": kind, "positive": positive, "form_fields": form, "order": order})

    for title, body, campaigns in [
        ("Greeting", "Hi {contact.first_name}! I'm {agent.first_name} from {campaign.name}. How can I help?",
         [sales, support]),
        ("Business hours", "We answer Monday to Friday, 9:00 to 18:00.", [sales, support]),
        ("Price list", "Hi {contact.first_name}, here is our price list: https://example.com/prices", [sales]),
        ("Ticket opened", "{contact.first_name}, we opened a ticket for you. We will write back soon.", [support]),
    ]:
        reply, _ = QuickReply.objects.get_or_create(title=title, defaults={"body": body})
        reply.campaigns.add(*campaigns)

    # An example of business hours; not attached to the demo lines, so the demo answers at any hour.
    office, created = TimeGroup.objects.get_or_create(name="Office hours (example)",
                                                     defaults={"timezone": "America/Argentina/Buenos_Aires"})
    if created:
        TimeRange.objects.create(time_group=office, weekday_from=0, weekday_to=4,
                                 time_from=datetime.time(9), time_to=datetime.time(18))
        TimeRange.objects.create(time_group=office, weekday_from=5, weekday_to=5,
                                 time_from=datetime.time(9), time_to=datetime.time(13))

    # An example interactive menu; attach it to a line in the admin to try it (no demo line uses it,
    # so the demo's conversations go straight to the general inbox).
    menu, created = InteractiveMenu.objects.get_or_create(name="Main menu (example)", defaults={
        "header": "ACME", "body": "Hi! How can we help you today?", "button": "Options",
        "handoff_message": "Thanks! An agent will be with you shortly."})
    if created:
        MenuOption.objects.create(menu=menu, order=1, title="Sales", description="Plans and prices",
                                  campaign=sales)
        MenuOption.objects.create(menu=menu, order=2, title="Support", description="Help with your service",
                                  campaign=support)
        MenuOption.objects.create(menu=menu, order=3, title="Opening hours", action=MenuOption.Action.CLOSE,
                                  closing_message="We answer Monday to Friday, 9:00 to 18:00.")

    provider, _ = Provider.objects.get_or_create(name="Sandbox", defaults={"kind": Provider.Kind.SANDBOX})
    sales_line, _ = Line.objects.get_or_create(number="+15550100001", defaults={
        "name": "Sales line", "provider": provider, "campaign": sales,
        "welcome_message": "", "goodbye_message": "Thanks for writing to us!"})
    support_line, _ = Line.objects.get_or_create(number="+15550100002", defaults={
        "name": "Support line", "provider": provider, "campaign": support})
    for line, templates in [
        (sales_line, [("order_update", "Hi {{1}}, your order {{2}} is on its way.", "UTILITY"),
                      ("follow_up", "Hi {{1}}, are you still interested in our offer?", "MARKETING"),
                      ("promo_pending", "Hi {{1}}, 20% off this week!", "MARKETING")]),
        (support_line, [("ticket_update", "Hi {{1}}, your ticket {{2}} was updated.", "UTILITY"),
                        ("callback", "Hi {{1}}, we tried to reach you. Reply to continue.", "UTILITY")]),
    ]:
        for name, body, category in templates:
            MessageTemplate.objects.get_or_create(line=line, provider_template_id=f"{line.pk}-{name}", defaults={
                "name": name, "body": body, "category": category, "language": "en",
                "status": (MessageTemplate.Status.PENDING if name.endswith("pending")
                           else MessageTemplate.Status.APPROVED)})
    return {"campaigns": Campaign.objects.count(), "lines": Line.objects.count()}

"""What the agent works on: campaigns, lines, templates, quick replies, dispositions; demo data."""

from __future__ import annotations

from conftest import results
from conversa.campaigns.models import Campaign, DispositionOption, QuickReply
from conversa.contacts.models import Contact
from conversa.web.demo import load_demo
from conversa.whatsapp.models import Line, MessageTemplate


def test_campaigns_and_lines_follow_membership(api, demo):
    assert [c["name"] for c in results(api("agent1").get("/api/v1/campaigns/"))] == ["Sales"]
    assert [c["name"] for c in results(api("agent3").get("/api/v1/campaigns/"))] == ["Sales", "Support"]
    lines = results(api("agent3").get("/api/v1/lines/"))
    assert {(line["number"], line["campaign"]) for line in lines} == {
        ("+15550100001", demo["sales_line"].campaign_id), ("+15550100002", demo["support_line"].campaign_id)}
    assert all({"id", "number", "campaign"} <= set(line) for line in lines)


def test_templates_list_only_approved_with_param_count(api, demo):
    templates = results(api("agent1").get(f"/api/v1/lines/{demo['sales_line'].pk}/templates/"))
    by_name = {t["name"]: t for t in templates}
    assert set(by_name) == {"order_update", "follow_up"}
    assert by_name["order_update"]["param_count"] == 2 and "{{1}}" in by_name["order_update"]["body"]
    assert api("agent1").get(f"/api/v1/lines/{demo['support_line'].pk}/templates/").status_code == 404
    assert api("agent1").get("/api/v1/lines/999/templates/").status_code == 404


def test_quick_replies_and_dispositions_of_a_campaign(api, demo):
    sales = demo["sales_line"].campaign_id
    replies = {r["title"] for r in results(api("agent1").get(f"/api/v1/campaigns/{sales}/quick-replies/"))}
    assert replies == {"Greeting", "Business hours", "Price list"}
    options = results(api("agent1").get(f"/api/v1/campaigns/{sales}/dispositions/"))
    assert len(options) >= 3
    quote = next(o for o in options if o["name"] == "Quote sent")
    assert quote["kind"] == "management" and quote["form_fields"][0]["name"] == "amount"
    support = demo["support_line"].campaign_id
    assert api("agent1").get(f"/api/v1/campaigns/{support}/dispositions/").status_code == 404
    assert api("agent1").get(f"/api/v1/campaigns/{support}/agents/").status_code == 404


def test_loading_the_demo_twice_duplicates_nothing(demo):
    def counts() -> tuple[int, ...]:
        return (Campaign.objects.count(), Line.objects.count(), MessageTemplate.objects.count(),
                QuickReply.objects.count(), DispositionOption.objects.count(), Contact.objects.count())

    before = counts()
    load_demo()
    assert counts() == before
    assert before[0] == 2 and before[1] == 2 and before[4] >= 6 and before[3] >= 4

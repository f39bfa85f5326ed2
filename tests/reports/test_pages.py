"""Supervisor pages with a session login, and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from conversa.accounts.models import AgentProfile
from conversa.campaigns.models import Campaign
from conversa.inbox.models import Conversation
from conversa.reports.exports import safe_cell


def login(username: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(username=username))
    return client


def csv_rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_dashboard_renders(scenario: dict[str, Any]) -> None:
    response = login("supervisor").get("/supervisor/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Sales" in html and "Support" in html and "Laura Gómez" in html
    assert 'data-live-url="/supervisor/live/"' in html
    partial = login("supervisor").get("/supervisor/live/")
    assert partial.status_code == 200 and "<html" not in partial.content.decode()


def test_reports_page_renders_and_escapes(scenario: dict[str, Any]) -> None:
    response = login("supervisor").get("/supervisor/reports/")
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Messages received", "Not dispositioned", "Sale", "Martín Pérez", "conversations.csv",
                 f'href="/c/{scenario["c1"].pk}/"'):
        assert text in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # filters narrow the list
    filtered = login("supervisor").get("/supervisor/reports/", {"phone": "5550002"}).content.decode()
    assert f'href="/c/{scenario["c2"].pk}/"' in filtered and f'href="/c/{scenario["c1"].pk}/"' not in filtered
    bad = login("supervisor").get("/supervisor/reports/", {"from": "nope"})
    assert bad.status_code == 400


def test_reports_page_in_spanish(scenario: dict[str, Any]) -> None:
    html = login("supervisor").get("/supervisor/reports/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Mensajes recibidos" in html and "Sin calificación" in html


def test_agents_get_403_and_console_link_only_for_supervisors(scenario: dict[str, Any]) -> None:
    agent = login("agent1")
    for path in ("/supervisor/", "/supervisor/live/", "/supervisor/reports/", "/supervisor/reports/conversations.csv"):
        assert agent.get(path).status_code == 403
    assert 'data-testid="supervisor-link"' not in agent.get("/").content.decode()
    assert 'data-testid="supervisor-link"' in login("supervisor").get("/").content.decode()
    assert Client().get("/supervisor/").status_code == 302  # to the login page


def test_csv_export(scenario: dict[str, Any]) -> None:
    rows = csv_rows(login("supervisor").get("/supervisor/reports/conversations.csv"))
    header, data = rows[0], rows[1:]
    assert header[:4] == ["ID", "Agent", "Created", "Campaign"]
    by_id = {int(r[0]): dict(zip(header, r, strict=True)) for r in data}
    assert set(by_id) == {scenario[k].pk for k in ("c1", "c2", "c3", "c4", "c5")}
    c1 = by_id[scenario["c1"].pk]
    assert (c1["Agent"], c1["Campaign"], c1["Status"], c1["Messages"], c1["Disposition"]) == (
        "Laura Gómez", "Sales", "Closed", "4", "Sale")  # 2 in, reply, goodbye
    assert c1["Phone"] == "+5491155550001"  # a plain number computes nothing: left as it is
    c3 = by_id[scenario["c3"].pk]
    assert c3["Customer"].startswith("'=cmd|")
    assert c3["Agent"] == "" and c3["Disposition"] == "" and c3["Closed by system"] == "no"


def test_csv_filters_and_visibility(scenario: dict[str, Any]) -> None:
    sales_id = Campaign.objects.get(name="Sales").pk
    agent1 = User.objects.get(username="agent1").pk
    rows = csv_rows(login("supervisor").get(f"/supervisor/reports/conversations.csv?campaign={sales_id}"
                                            f"&agent={agent1}"))
    assert sorted(int(r[0]) for r in rows[1:]) == sorted([scenario["c1"].pk, scenario["c5"].pk])

    old = timezone.now() - timedelta(days=40)
    Conversation.objects.filter(pk=scenario["c2"].pk).update(created_at=old)
    rows = csv_rows(login("supervisor").get("/supervisor/reports/conversations.csv"))
    assert scenario["c2"].pk not in {int(r[0]) for r in rows[1:]}
    day = timezone.localdate(old).isoformat()
    rows = csv_rows(login("supervisor").get(f"/supervisor/reports/conversations.csv?from={day}&to={day}"))
    assert [int(r[0]) for r in rows[1:]] == [scenario["c2"].pk]

    only_sales = User.objects.create_user("sales_sup")
    AgentProfile.objects.create(user=only_sales, role=AgentProfile.Role.SUPERVISOR)
    Campaign.objects.get(name="Sales").supervisors.add(only_sales)
    rows = csv_rows(login("sales_sup").get("/supervisor/reports/conversations.csv"))
    assert {r[3] for r in rows[1:]} == {"Sales"}
    support_id = Campaign.objects.get(name="Support").pk
    assert login("sales_sup").get(f"/supervisor/reports/conversations.csv?campaign={support_id}").status_code == 404
    html = login("sales_sup").get("/supervisor/").content.decode()
    assert "Sales" in html and "Support" not in html


def test_safe_cell() -> None:
    for dangerous in ("=1+1", "+54+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(dangerous) == "'" + dangerous
    assert safe_cell("Ana") == "Ana"
    assert safe_cell(None) == ""
    assert safe_cell(12) == "12"

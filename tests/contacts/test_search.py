"""Contact search (GET /api/v1/campaigns/<id>/contacts/?q=): what matches, keyset pages, one
query per page, and on PostgreSQL the trigram index serving the match."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from conversa.campaigns.models import Campaign
from conversa.contacts import selectors
from conversa.contacts.models import Contact, ContactDatabase
from conversa.contacts.selectors import search_contacts

URL = "/api/v1/campaigns/{}/contacts/"


def _sales() -> tuple[Campaign, ContactDatabase]:
    campaign = Campaign.objects.get(name="Sales")
    return campaign, campaign.contact_database


def _add(database: ContactDatabase, phone: str, first: str, last: str = "", email: str = "") -> Contact:
    return Contact.objects.create(database=database, phone=phone, first_name=first, last_name=last, email=email)


def _search(client: APIClient, campaign: Campaign, **params: Any) -> dict[str, Any]:
    response = client.get(URL.format(campaign.pk), params)
    assert response.status_code == 200, response.content
    return response.json()


def _phones(body: dict[str, Any]) -> set[str]:
    return {row["phone"] for row in body["results"]}


def test_matches_a_fragment_of_any_field(api: Callable[[str], APIClient], demo: dict[str, Any]) -> None:
    campaign, database = _sales()
    _add(database, "+5491160000001", "María José", "Gómez", "mjgomez@example.com")
    _add(database, "+5491160000002", "Bruno", "Díaz", "bruno@correo.ar")
    _add(ContactDatabase.objects.get(name="Support contacts"), "+5491160000003", "Gómez", "Support")
    client = api("agent1")
    assert _phones(_search(client, campaign, q="góm")) == {"+5491160000001"}  # another database's: never
    assert _phones(_search(client, campaign, q="JOS")) == {"+5491160000001"}  # case-insensitive
    assert _phones(_search(client, campaign, q="ía jo")) == {"+5491160000001"}  # inside a field
    assert _phones(_search(client, campaign, q="gomez")) == {"+5491160000001"}  # the email
    assert _phones(_search(client, campaign, q="60000002")) == {"+5491160000002"}  # the phone
    assert _phones(_search(client, campaign, q="@correo")) == {"+5491160000002"}
    assert _phones(_search(client, campaign, q="  díaz ")) == {"+5491160000002"}  # trimmed
    # Accents as typed: "diaz" is not "Díaz" (and bruno's email has no "diaz" either).
    assert _phones(_search(client, campaign, q="diaz")) == set()
    # LIKE's wildcards are plain characters in a term.
    assert _phones(_search(client, campaign, q="%")) == set()
    assert _phones(_search(client, campaign, q="_")) == set()
    assert _search(client, campaign, q="x" * 300) == {"next": None, "results": []}
    everyone = _search(client, campaign)
    assert {"+5491160000001", "+5491160000002", "+5491155550009"} <= _phones(everyone)
    assert set(everyone) == {"next", "results"}  # no count: nothing is counted


@pytest.mark.parametrize("typed", [
    "+54 9 11 6000-0001", "+5491160000001", "5491160000001", "(11) 6000 0001", "11-6000-0001", "6000.0001",
    "60000001", "  1160000001 ", "9 11 6000\u00a00001",
])
def test_a_phone_number_is_found_however_its_digits_are_typed(api: Callable[[str], APIClient],
                                                              demo: dict[str, Any], typed: str) -> None:
    campaign, database = _sales()
    _add(database, "+5491160000001", "María", "Gómez")
    _add(database, "+5491160000011", "Bruno", "Díaz")
    _add(ContactDatabase.objects.get(name="Support contacts"), "+5491160000001", "Otra", "Base")
    assert _phones(_search(api("agent1"), campaign, q=typed)) == {"+5491160000001"}


def test_a_phone_term_matches_phones_only(api: Callable[[str], APIClient], demo: dict[str, Any]) -> None:
    """Digits typed as a phone number are a phone number: an email's digits do not match them (a
    term with a letter in it is text, matched against every field as before)."""
    campaign, database = _sales()
    _add(database, "+5491160000002", "Bruno", "Díaz", "bruno2024@correo.ar")
    _add(database, "+5491160002024", "Carla", "Paz")
    client = api("agent1")
    assert _phones(_search(client, campaign, q="2024")) == {"+5491160002024"}
    assert _phones(_search(client, campaign, q="bruno2024")) == {"+5491160000002"}
    assert _phones(_search(client, campaign, q="+54 91160 00000 2")) == {"+5491160000002"}
    assert _phones(_search(client, campaign, q="1160-0000-09")) == set()  # no such number
    assert _phones(_search(client, campaign, q="+54+11")) == set()  # a second "+" is not a phone number


@pytest.mark.parametrize("bounded", [3, 2000])
def test_phone_pages_follow_next_in_name_order_without_gaps(api: Callable[[str], APIClient], demo: dict[str, Any],
                                                            monkeypatch: pytest.MonkeyPatch, bounded: int) -> None:
    """Whether the matches are few enough to be sorted (2000) or the name order is walked (more than
    3), the pages are the name order's, with ties broken by id, and stop at the last match."""
    monkeypatch.setattr(selectors, "BOUNDED_MATCHES", bounded)
    campaign, database = _sales()
    names = [("Ana", "Paz"), ("Ana", "Paz"), ("Ana", "Ríos"), ("Ana", ""), ("Beto", "Paz"), ("Ana", "Paz"),
             ("Carla", "Ávila"), ("Ana", "Ríos"), ("Ana", "Paz")]
    for n, (first, last) in enumerate(names):
        _add(database, f"+5491170077{n:03d}", first, last)
    _add(database, "+5491170088001", "Aaron", "Otro")  # not a match
    expected = [c.pk for c in Contact.objects.filter(phone__contains="70077").order_by("first_name", "last_name", "id")]
    client = api("agent1")
    for limit in (1, 2, 4, 9, 200):
        seen: list[int] = []
        body = _search(client, campaign, q="+54 9 11 70077", limit=limit)
        while True:
            seen += [row["id"] for row in body["results"]]
            if body["next"] is None:
                break
            response = client.get(body["next"])
            assert response.status_code == 200, response.content
            body = response.json()
        assert seen == expected, limit


def test_pages_follow_next_in_name_order_without_gaps(api: Callable[[str], APIClient],
                                                      demo: dict[str, Any]) -> None:
    campaign, database = _sales()
    # Ties on first name and on full name: the id breaks them.
    names = [("Ana", "Paz"), ("Ana", "Paz"), ("Ana", "Ríos"), ("Ana", ""), ("Beto", "Paz"), ("Ana", "Paz"),
             ("Carla", "Ávila"), ("Ana", "Ríos")]
    for n, (first, last) in enumerate(names):
        _add(database, f"+54911700000{n:02d}", first, last)
    client = api("agent1")
    whole = _search(client, campaign, q="a", limit=200)
    assert whole["next"] is None
    expected = [row["id"] for row in whole["results"]]
    assert len(expected) == len(names) + 1  # and Julieta Fernández
    seen: list[int] = []
    body = _search(client, campaign, q="a", limit=3)
    while True:
        assert len(body["results"]) <= 3
        seen += [row["id"] for row in body["results"]]
        if body["next"] is None:
            break
        assert "limit=3" in body["next"] and "q=a" in body["next"]
        response = client.get(body["next"])
        assert response.status_code == 200, response.content
        body = response.json()
    assert seen == expected
    # The order is the name order (the database's collation; the ids break ties).
    rows = {row["id"]: (row["first_name"], row["last_name"]) for row in whole["results"]}
    firsts = [rows[pk][0] for pk in expected]
    assert firsts.index("Beto") > max(i for i, f in enumerate(firsts) if f == "Ana")
    paz = [pk for pk in expected if rows[pk] == ("Ana", "Paz")]
    assert paz == sorted(paz) and len(paz) == 3


@pytest.mark.parametrize(("params", "field"), [
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b'["a","b",0]').decode()}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b'["a",null,5]').decode()}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b'{"a":1}').decode()}, "cursor"),
    ({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"page": "2"}, "page"), ({"q": "a\x00b"}, "q"),
])
def test_bad_parameters_are_a_400_naming_them(api: Callable[[str], APIClient], demo: dict[str, Any],
                                              params: dict[str, str], field: str) -> None:
    campaign, _database = _sales()
    response = api("agent1").get(URL.format(campaign.pk), params)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field


def test_other_campaigns_contacts_are_not_found(api: Callable[[str], APIClient], demo: dict[str, Any]) -> None:
    support = Campaign.objects.get(name="Support")
    assert api("agent1").get(URL.format(support.pk), {"q": "a"}).status_code == 404  # agent1 is not in Support


def test_a_page_is_one_query(api: Callable[[str], APIClient], demo: dict[str, Any]) -> None:
    campaign, database = _sales()
    for n in range(30):
        _add(database, f"+5491180000{n:03d}", f"Nombre{n:02d}", "Apellido")
    with CaptureQueriesContext(connection) as ctx:
        page = search_contacts(database_id=database.pk, term="nombre", after=None, limit=10)
    assert len(ctx.captured_queries) == 1
    assert len(page.contacts) == 10 and page.next is not None
    with CaptureQueriesContext(connection) as ctx:
        last = search_contacts(database_id=database.pk, term="nombre", after=page.next, limit=25)
    assert len(ctx.captured_queries) == 1
    assert len(last.contacts) == 20 and last.next is None
    with CaptureQueriesContext(connection) as ctx:
        _search(api("agent1"), campaign, q="nombre")
    contact_queries = [q["sql"] for q in ctx.captured_queries if "contacts_contact" in q["sql"]]
    assert len(contact_queries) == 1 and "COUNT(" not in contact_queries[0].upper()
    with CaptureQueriesContext(connection) as ctx:
        body = _search(api("agent1"), campaign, q="+54 9 11 8000", limit=10)
    assert len(body["results"]) == 10 and body["next"] is not None
    assert len([q for q in ctx.captured_queries if "contacts_contact" in q["sql"]]) == 1


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.postgres_only
def test_postgresql_serves_the_match_with_the_trigram_index(demo: dict[str, Any]) -> None:
    """With a realistic number of contacts the planner reads a selective term from the trigram
    index and a broad one (or none) in name order from the btree — never the whole table."""
    _campaign, database = _sales()
    firsts = ["Ana", "Bruno", "Carla", "Diego", "Elena", "Facundo", "Gabriela", "Hernán", "Inés", "Juan"]
    Contact.objects.bulk_create(
        Contact(database=database, phone=f"+54119{9000000 + n:07d}", first_name=firsts[n % 10], last_name=f"Pérez {n}",
                email=f"cliente{n}@example.com") for n in range(20_000))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE contacts_contact")  # as autovacuum would: GIN pending list merged

    def plan_of(term: str) -> str:
        with CaptureQueriesContext(connection) as ctx:
            search_contacts(database_id=database.pk, term=term, after=None, limit=100)
        return _plan(ctx.captured_queries[0]["sql"])

    for term in ("9001234", "cliente777@", "pérez 1999"):
        plan = plan_of(term)
        assert "contact_search_trgm_idx" in plan, plan
        assert "Seq Scan" not in plan, plan
    for term in ("", "an"):
        plan = plan_of(term)
        # The walk tests the match on the index's own copy of each field: no table row read.
        assert "Index Only Scan using contact_by_name_idx" in plan, plan
        assert "Seq Scan" not in plan, plan


@pytest.mark.postgres_only
def test_postgresql_reads_a_phone_terms_few_matches_from_the_trigram_index(demo: dict[str, Any]) -> None:
    """A phone term with few matches (here 0.5 % of 20,000 contacts) reads them from the trigram index
    and sorts them: the name order is not walked (the planner walked it, reading ~200 contacts per
    row of the page). A common one stops reading matches early and walks the name order. Never a
    whole table's rows."""
    _campaign, database = _sales()
    firsts = ["Ana", "Bruno", "Carla", "Diego", "Elena", "Facundo", "Gabriela", "Hernán", "Inés", "Juan"]
    Contact.objects.bulk_create(
        Contact(database=database, phone=f"+54119{9000000 + n:07d}", first_name=firsts[n % 10], last_name=f"Pérez {n}")
        for n in range(20_000))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE contacts_contact")

    def executed_plan(term: str) -> list[str]:
        with CaptureQueriesContext(connection) as ctx:
            page = search_contacts(database_id=database.pk, term=term, after=None, limit=100)
        assert len(page.contacts) == 100
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {ctx.captured_queries[0]['sql']}")
            return [row[0] for row in cursor.fetchall()]

    few = executed_plan("+54 11 990 123")  # +5411990 12300 to 12399: 100 matches
    assert any("Bitmap Index Scan on contact_search_trgm_idx" in line for line in few), few
    assert all("never executed" in line for line in few if "contact_by_name_idx" in line), few
    common = executed_plan("5411")
    assert any("contact_by_name_idx" in line and "never executed" not in line for line in common), common
    for plan in (few, common):
        assert max(int(rows) for line in plan for rows in re.findall(r"rows=(\d+)", line)) < 20_000, plan


def test_every_api_route_the_readme_names_exists() -> None:
    """README and API agree (issue 9 cause 6: the README once named a /api/v1/contacts/?q= that
    never existed)."""
    from pathlib import Path

    from django.urls import Resolver404, resolve

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    paths = set(re.findall(r"(/api/v1/[\w/<>.-]*)", readme))
    assert "/api/v1/campaigns/<id>/contacts/" in paths
    missing = []
    for path in sorted(paths):
        try:
            resolve(re.sub(r"<\w+>", "1", path))
        except Resolver404:
            missing.append(path)
    assert not missing, missing


def test_a_page_has_the_contact_serializers_exact_shape(api: Callable[[str], APIClient],
                                                        demo: dict[str, Any]) -> None:
    from conversa.contacts.api import ContactSerializer

    campaign, database = _sales()
    _add(database, "+5491190000001", "Zoe", "", "")
    _add(database, "+5491190000002", "Zoë", "Ñandú", "zoe@example.com")
    Contact.objects.filter(phone="+5491190000002").update(custom={"dni": "12345678", "plan": None})
    body = _search(api("agent1"), campaign, q="zo")
    expected = ContactSerializer(Contact.objects.filter(first_name__startswith="Zo").order_by("first_name"),
                                 many=True).data
    assert body["results"] == [dict(row) for row in expected]
    assert [row["email"] for row in body["results"]] == [None, "zoe@example.com"]

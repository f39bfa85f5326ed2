"""Bulk template sends (issue 12): recipients planned with skip reasons, sent once each to the Meta
fake at the line's rate, paused / resumed / cancelled, 429s honoured (Retry-After), a dead runner's
claims never re-sent, statuses from Meta's webhooks, STOP opting out, replies routed and linked."""

from __future__ import annotations

import datetime
import time
from collections import Counter
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from conftest import drain_tasks
from conversa.campaigns.models import Campaign
from conversa.core.errors import InvalidInput, NotAllowed, NotFound
from conversa.inbox.models import Conversation
from conversa.outreach import actions, selectors
from conversa.outreach.models import BulkRecipient, BulkSend, OptOut
from conversa.outreach.selectors import BulkRequest
from conversa.outreach.sources import ContactFilter
from conversa.outreach.tasks import run_bulk_send
from conversa.whatsapp.models import Line, MessageTemplate
from fakes.meta import MetaFake
from fakes.server import Reply

from .conftest import SEND_PATH, add_contacts, customer_writes, meta_status, phone

Reason = BulkRecipient.Reason
Status = BulkRecipient.Status


@pytest.fixture(autouse=True)
def _fast(settings: Any) -> None:
    settings.CONVERSA_BULK_SLICE_SECONDS = 30
    settings.CONVERSA_BULK_CONCURRENCY = 4


def request_for(line: Line, template: MessageTemplate, **extra: Any) -> BulkRequest:
    fields: dict[str, Any] = {"name": "Promo", "line_id": line.pk, "template_id": template.pk,
                              "params": ["{first_name}", "un descuento"], "source": BulkSend.Source.DATABASE,
                              "rate_per_second": 1000}
    return BulkRequest(**{**fields, **extra})


def references(fake: MetaFake) -> Counter[str]:
    return Counter(ref for ref in fake.accepted_per_reference().elements() if ref.startswith("bulk:"))


def drain_until_done(job: BulkSend, *, deadline: float = 30.0) -> BulkSend:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        drain_tasks()
        job.refresh_from_db()
        if job.status != BulkSend.Status.RUNNING:
            return job
        time.sleep(0.1)  # a back-off's continuation is not due yet: nothing else to wait on
    pytest.fail(f"bulk send {job.pk} still {job.status} after {deadline}s")


def test_sends_each_recipient_once_with_its_parameters_and_statuses_move_it_forward(
        meta_fake: MetaFake, meta_line: Line, template: MessageTemplate, supervisor: User) -> None:
    add_contacts(meta_line, 30)
    job = actions.create_bulk_send(user=supervisor, request=request_for(meta_line, template))
    assert job.recipients.filter(status=Status.PENDING).count() == 30
    job = drain_until_done(job)
    assert job.status == BulkSend.Status.DONE
    sent = references(meta_fake)
    assert len(sent) == 30 and set(sent.values()) == {1}
    recipient = job.recipients.get(phone=phone(7))
    body = next(body for _, ref, body in meta_fake.accepted if ref == f"bulk:{recipient.pk}")
    assert body["to"] == phone(7).lstrip("+")
    parameters = body["template"]["components"][0]["parameters"]
    assert [p["text"] for p in parameters] == ["Cliente7", "un descuento"]
    assert recipient.body == "Hola Cliente7, tenemos un descuento para vos."
    assert job.recipients.filter(status=Status.SENT, provider_message_id__startswith="wamid.FAKE").count() == 30

    wamids = dict(job.recipients.values_list("pk", "provider_message_id"))
    first, second = sorted(wamids)[:2]
    meta_status(meta_line, items=[{"id": wamids[first], "status": "read", "biz_opaque_callback_data": f"bulk:{first}"},
                                  {"id": wamids[second], "status": "delivered"},  # by provider id alone
                                  {"id": wamids[first], "status": "delivered"}])  # late: never undoes read
    assert BulkRecipient.objects.get(pk=first).status == Status.READ
    assert BulkRecipient.objects.get(pk=second).status == Status.DELIVERED
    figures = selectors.progress(job_ids=[job.pk])[job.pk]
    assert (figures.total, figures.sent, figures.delivered, figures.read, figures.pending) == (30, 30, 2, 1, 0)


def test_skip_reasons_are_recorded_per_recipient(meta_fake: MetaFake, meta_line: Line, template: MessageTemplate,
                                                 supervisor: User) -> None:
    OptOut.objects.create(line=meta_line, phone=phone(2))
    Conversation.objects.create(line=meta_line, campaign=meta_line.campaign, customer_phone=phone(3))
    csv_text = ("telefono,nombre,oferta\n"
                f"{phone(1)},Ana,2x1\n{phone(2)},Bea,2x1\n{phone(3)},Caro,2x1\n"
                "12,Dani,2x1\n"  # not a phone number
                f"{phone(1)},Ana otra vez,2x1\n"  # the same number again
                f"{phone(5)},,2x1\n")  # no name: an empty parameter
    upload = SimpleUploadedFile("lista.csv", csv_text.encode(), content_type="text/csv")
    request = request_for(meta_line, template, source=BulkSend.Source.CSV, csv_file=upload,
                          params=["{nombre}", "{oferta}"])
    plan = selectors.plan_bulk_send(user=supervisor, request=request)
    assert [r.phone for r in plan.preview()] == [phone(1)]
    assert plan.preview()[0].body == "Hola Ana, tenemos 2x1 para vos."
    assert plan.skipped == Counter({Reason.OPTED_OUT: 1, Reason.OPEN_CONVERSATION: 1, Reason.INVALID_NUMBER: 1,
                                    Reason.DUPLICATE: 1, Reason.BAD_PARAMETERS: 1})
    upload.seek(0)
    job = drain_until_done(actions.create_bulk_send(user=supervisor, request=request))
    reasons = dict(job.recipients.values_list("row", "reason"))
    assert reasons == {1: "", 2: Reason.OPTED_OUT, 3: Reason.OPEN_CONVERSATION, 4: Reason.INVALID_NUMBER,
                       5: Reason.DUPLICATE, 6: Reason.BAD_PARAMETERS}
    assert "empty" in job.recipients.get(row=6).error_title
    assert len(references(meta_fake)) == 1

    # Not skipping open conversations sends to that customer too.
    upload.seek(0)
    job = drain_until_done(actions.create_bulk_send(user=supervisor, request=request_for(
        meta_line, template, source=BulkSend.Source.CSV, csv_file=upload, params=["{nombre}", "{oferta}"],
        skip_open_conversations=False)))
    assert job.recipients.get(row=3).status == Status.SENT


def test_contact_database_filter_and_contact_fields(meta_fake: MetaFake, meta_line: Line, template: MessageTemplate,
                                                    supervisor: User) -> None:
    add_contacts(meta_line, 10)
    request = request_for(meta_line, template, params=["{first_name}", "el plan {plan}"],
                          contact_filter=ContactFilter(field="plan", value="oro"))
    plan = selectors.plan_bulk_send(user=supervisor, request=request)
    assert len(plan.to_send) == 5 and all(r.body.endswith("el plan oro para vos.") for r in plan.to_send)
    with pytest.raises(InvalidInput) as bad:
        selectors.plan_bulk_send(user=supervisor, request=request_for(
            meta_line, template, contact_filter=ContactFilter(field="nope", value="x")))
    assert bad.value.field == "filter_field"


def test_pause_resume_and_cancel(meta_fake: MetaFake, meta_line: Line, template: MessageTemplate,
                                 supervisor: User, settings: Any) -> None:
    add_contacts(meta_line, 40)
    settings.CONVERSA_BULK_SLICE_SECONDS = 0.3
    job = actions.create_bulk_send(user=supervisor, request=request_for(meta_line, template, rate_per_second=40))
    run_bulk_send.call(job.pk)  # one slice: about a dozen at 40/s
    first = len(references(meta_fake))
    assert 0 < first < 40
    actions.pause_bulk_send(user=supervisor, job_id=job.pk)
    drain_tasks()  # the continuation finds it paused
    assert len(references(meta_fake)) == first
    assert job.recipients.filter(status=Status.PENDING).count() == 40 - first
    with pytest.raises(Exception, match="paused"):
        actions.pause_bulk_send(user=supervisor, job_id=job.pk)

    actions.resume_bulk_send(user=supervisor, job_id=job.pk)
    run_bulk_send.call(job.pk)
    second = len(references(meta_fake))
    assert first < second < 40
    actions.cancel_bulk_send(user=supervisor, job_id=job.pk)
    drain_tasks()
    job.refresh_from_db()
    assert job.status == BulkSend.Status.CANCELLED
    assert len(references(meta_fake)) == second and set(references(meta_fake).values()) == {1}
    assert job.recipients.filter(status=Status.SKIPPED, reason=Reason.CANCELLED).count() == 40 - second


def test_a_429_backs_off_for_retry_after_then_sends_each_once(meta_fake: MetaFake, meta_line: Line,
                                                               template: MessageTemplate, supervisor: User,
                                                               settings: Any) -> None:
    settings.CONVERSA_BULK_CONCURRENCY = 1
    add_contacts(meta_line, 6)
    meta_fake.script("POST", SEND_PATH, Reply(429, {"error": {
        "message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429}},
        headers={"Retry-After": "2"}))
    job = actions.create_bulk_send(user=supervisor, request=request_for(meta_line, template))
    before = timezone.now()
    run_bulk_send.call(job.pk)
    job.refresh_from_db()
    assert job.backoff_until is not None and job.backoff_until >= before + datetime.timedelta(seconds=2)
    assert "Rate limit" in job.backoff_reason
    throttled = job.recipients.get(row=1)
    assert (throttled.status, throttled.attempts, throttled.error_code) == (Status.PENDING, 1, "130429")
    drain_tasks()  # its continuation waits for the Retry-After
    assert references(meta_fake) == Counter()
    job = drain_until_done(job)
    assert timezone.now() >= before + datetime.timedelta(seconds=2)
    sent = references(meta_fake)
    assert len(sent) == 6 and set(sent.values()) == {1}
    assert job.recipients.get(row=1).status == Status.SENT


def test_a_dead_runners_claims_are_never_sent_again(meta_fake: MetaFake, meta_line: Line, template: MessageTemplate,
                                                     supervisor: User, settings: Any) -> None:
    settings.CONVERSA_BULK_LEASE_SECONDS = 0.2
    add_contacts(meta_line, 10)
    job = actions.create_bulk_send(user=supervisor, request=request_for(meta_line, template))
    # A runner takes the job and claims a round, then dies before (or during) its calls.
    assert actions.take_job(job_id=job.pk, runner="dead") is not None
    claimed = actions.claim_round(job_id=job.pk, runner="dead", size=3)
    assert len(claimed) == 3
    assert actions.take_job(job_id=job.pk, runner="other") is None  # its lease still holds
    time.sleep(0.3)  # the dead runner's lease running out is the point of this test
    job = drain_until_done(job)
    assert {r.pk for r in job.recipients.filter(status=Status.UNCONFIRMED, error_code="interrupted")} == {
        r.pk for r in claimed}
    sent = references(meta_fake)
    assert len(sent) == 7 and set(sent.values()) == {1}
    assert not set(sent) & {f"bulk:{r.pk}" for r in claimed}
    # Had one of them reached Meta, its status webhook (echoing our reference) confirms it.
    meta_status(meta_line, items=[{"id": "wamid.LOST1", "status": "delivered",
                                   "biz_opaque_callback_data": f"bulk:{claimed[0].pk}"}])
    confirmed = BulkRecipient.objects.get(pk=claimed[0].pk)
    assert (confirmed.status, confirmed.provider_message_id) == (Status.DELIVERED, "wamid.LOST1")


def test_stop_opts_the_customer_out_even_after_the_job_was_created(meta_fake: MetaFake, meta_line: Line,
                                                                   template: MessageTemplate,
                                                                   supervisor: User) -> None:
    add_contacts(meta_line, 3)
    job = actions.create_bulk_send(user=supervisor, request=request_for(meta_line, template))
    customer_writes(meta_line, sender=phone(1), text=" Baja. ", message_id="wamid.STOP1")
    assert OptOut.objects.filter(line=meta_line, phone=phone(1), keyword="Baja.").exists()
    Conversation.objects.filter(line=meta_line).update(status=Conversation.Status.CLOSED)
    job = drain_until_done(job)
    assert job.recipients.get(phone=phone(1)).reason == Reason.OPTED_OUT
    assert len(references(meta_fake)) == 2
    customer_writes(meta_line, sender=phone(2), text="stop please", message_id="wamid.NOTSTOP")
    assert not OptOut.objects.filter(phone=phone(2)).exists()  # only the word itself opts out


def test_a_reply_opens_a_conversation_in_the_jobs_campaign_linked_to_it(meta_fake: MetaFake, meta_line: Line,
                                                                        template: MessageTemplate,
                                                                        supervisor: User) -> None:
    add_contacts(meta_line, 2)
    support = Campaign.objects.get(name="Support")
    support.supervisors.add(supervisor)
    job = drain_until_done(actions.create_bulk_send(user=supervisor, request=request_for(
        meta_line, template, campaign_id=support.pk, database_id=meta_line.campaign.contact_database_id)))
    customer_writes(meta_line, sender=phone(0), text="Me interesa", message_id="wamid.REPLY1")
    conversation = Conversation.objects.get(line=meta_line, customer_phone=phone(0))
    assert (conversation.campaign_id, conversation.status, conversation.agent_id) == (
        support.pk, Conversation.Status.NEW, None)
    assert selectors.reply_job_for(conversation_id=conversation.pk) == job
    assert job.recipients.get(phone=phone(0)).reply_conversation_id == conversation.pk
    figures = selectors.progress(job_ids=[job.pk])[job.pk]
    assert (figures.replies, figures.response_rate) == (1, 50.0)
    totals = selectors.bulk_totals(campaign_ids=[support.pk], start=job.created_at - datetime.timedelta(days=1),
                                   end=timezone.now() + datetime.timedelta(days=1))
    assert (totals[support.pk].sent, totals[support.pk].replies, totals[support.pk].response_rate) == (2, 1, 50.0)
    # Shown in the thread, and in the reports as a response rate.
    browser = Client()
    browser.force_login(supervisor)
    pane = browser.get(f"/console/c/{conversation.pk}/", HTTP_HX_REQUEST="true")
    assert pane.status_code == 200 and b'data-testid="bulk-reply"' in pane.content and b"Promo" in pane.content
    report = browser.get("/supervisor/reports/", {"campaign": support.pk})
    assert b'id="bulk-totals"' in report.content and b"50.0%" in report.content
    # A customer nobody sent to lands on the line's own campaign, unlinked.
    customer_writes(meta_line, sender="+5491166660000", text="Hola", message_id="wamid.OTHER")
    other = Conversation.objects.get(customer_phone="+5491166660000")
    assert other.campaign_id == meta_line.campaign_id and selectors.reply_job_for(conversation_id=other.pk) is None


def test_only_supervisors_of_the_lines_campaign(meta_line: Line, template: MessageTemplate, supervisor: User) -> None:
    agent = get_user_model().objects.get(username="agent1")
    with pytest.raises(NotAllowed):
        selectors.plan_bulk_send(user=agent, request=request_for(meta_line, template))
    meta_line.campaign.supervisors.remove(supervisor)
    with pytest.raises(NotFound):
        selectors.plan_bulk_send(user=supervisor, request=request_for(meta_line, template))


def test_pages_and_csv_export(meta_fake: MetaFake, meta_line: Line, template: MessageTemplate,
                             supervisor: User) -> None:
    add_contacts(meta_line, 3)
    browser = Client()
    browser.force_login(supervisor)
    bad = browser.post("/supervisor/bulk/new/", {"name": "X", "line": meta_line.pk, "template": template.pk,
                                                 "params": "{first_name}", "source": "database"})
    assert bad.status_code == 400 and b"takes 2 parameter" in bad.content
    preview = browser.post("/supervisor/bulk/preview/", {"name": "X", "line": meta_line.pk, "template": template.pk,
                                                         "params": "{first_name}\n<b>oferta</b>", "source": "database"})
    assert b"3 messages will be sent" in preview.content and b"&lt;b&gt;oferta&lt;/b&gt;" in preview.content
    created = browser.post("/supervisor/bulk/new/", {"name": "Promo <script>", "line": meta_line.pk,
                                                     "template": template.pk, "params": "{first_name}\nalgo",
                                                     "source": "database", "skip_open": "on", "rate": "500"})
    assert created.status_code == 302
    job = BulkSend.objects.get()
    assert job.rate_per_second == 500
    drain_until_done(job)
    page = browser.get(f"/supervisor/bulk/{job.pk}/")
    assert page.status_code == 200 and b"Promo &lt;script&gt;" in page.content
    assert browser.get(f"/supervisor/bulk/{job.pk}/progress/").content.count(b'data-kpi="sent">3<') == 1
    assert browser.get(f"/supervisor/bulk/{job.pk}/?status=bogus").status_code == 400
    lines = b"".join(browser.get(f"/supervisor/bulk/{job.pk}/recipients.csv").streaming_content).decode()
    assert lines.count("\n") == 4 and f"'{phone(2)}" in lines and ",sent," in lines  # +54…: defused
    assert browser.post(f"/supervisor/bulk/{job.pk}/pause/").status_code == 409
    agent = Client()
    agent.force_login(get_user_model().objects.get(username="agent1"))
    assert agent.get(f"/supervisor/bulk/{job.pk}/").status_code == 403
    assert browser.get("/supervisor/bulk/999999/").status_code == 404
    admin = Client()
    admin.force_login(get_user_model().objects.get(username="admin"))
    assert admin.get("/admin/outreach/optout/").status_code == 200
    assert admin.get(f"/admin/outreach/bulksend/{job.pk}/change/").status_code == 200  # read-only view
    bad_csv = browser.post("/supervisor/bulk/preview/", {
        "name": "X", "line": meta_line.pk, "template": template.pk, "params": "{a}\n{b}", "source": "csv",
        "file": SimpleUploadedFile("x.csv", b"name,other\nAna,1\n", content_type="text/csv")})
    assert b"phone column" in bad_csv.content


def test_rest_api(meta_fake: MetaFake, meta_line: Line, template: MessageTemplate, supervisor: User) -> None:
    from conftest import token_client

    add_contacts(meta_line, 2)
    api = token_client("supervisor")
    bad = api.post("/api/v1/bulk-sends/", {"name": "X", "line": meta_line.pk, "template": template.pk,
                                           "params": ["{first_name}"], "source": "database"}, format="json")
    assert (bad.status_code, bad.json()["field"]) == (400, "params")
    assert api.post("/api/v1/bulk-sends/", {"name": "X", "line": meta_line.pk, "template": template.pk,
                                            "source": "somewhere"}, format="json").json()["field"] == "source"
    created = api.post("/api/v1/bulk-sends/", {"name": "API", "line": meta_line.pk, "template": template.pk,
                                               "params": ["{first_name}", "algo"], "source": "database",
                                               "rate_per_second": 500}, format="json")
    assert created.status_code == 201, created.content
    job_id = created.json()["id"]
    assert created.json()["progress"]["pending"] == 2
    upload = SimpleUploadedFile("l.csv", f"phone,name\n{phone(9)},Zoe\n".encode(), content_type="text/csv")
    multipart = api.post("/api/v1/bulk-sends/", {"name": "CSV", "line": meta_line.pk, "template": template.pk,
                                                 "params": ["{name}", "x"], "source": "csv", "file": upload},
                         format="multipart")
    assert multipart.status_code == 201, multipart.content
    drain_until_done(BulkSend.objects.get(pk=job_id))
    detail = api.get(f"/api/v1/bulk-sends/{job_id}/").json()
    assert (detail["status"], detail["progress"]["sent"]) == ("done", 2)
    assert [j["name"] for j in api.get("/api/v1/bulk-sends/").json()][:2] == ["CSV", "API"]
    assert api.post(f"/api/v1/bulk-sends/{job_id}/pause/").status_code == 409
    assert token_client("agent1").get("/api/v1/bulk-sends/").status_code == 403
    assert api.get("/api/v1/bulk-sends/999999/").status_code == 404

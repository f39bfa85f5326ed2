"""A bulk send of 10,000 recipients survives its worker's kill -9 without sending anyone twice
(issue 12): a real worker process sends to the Meta fake (which counts every send it accepted, by
our reference); it is killed mid-run; a second worker takes the job over once the dead runner's
lease runs out, marks the claims it left unconfirmed and sends only the rows never claimed. Meta's
status webhooks, echoing our reference, then confirm whatever was left unconfirmed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from tests.chaos.conftest import BIN, REPO, Deployment, poll

from conversa.whatsapp.adapters.base import hmac_sha256_signature
from fakes.meta import VERSION, MetaFake

pytestmark = pytest.mark.postgres_only
TOKEN, APP_SECRET, PHONE_NUMBER_ID, WABA_ID = "bulk-token", "bulk-app-secret", "1122334455668", "102290129340399"
RECIPIENTS = 10_000
CONCURRENCY = 16  # calls in flight, so also the most a kill can leave unconfirmed
# A Meta line with an approved template, RECIPIENTS contacts in a database of its own, and the bulk
# send to all of them created as an admin does (its runner task enqueued). Prints "<line id> <job id>".
SETUP = """
import os
from django.contrib.auth import get_user_model
from conversa.campaigns.models import Campaign
from conversa.contacts.models import Contact, ContactDatabase
from conversa.outreach.actions import create_bulk_send
from conversa.outreach.selectors import BulkRequest
from conversa.whatsapp.models import Line, MessageTemplate, Provider
count = int(os.environ["BULK_RECIPIENTS"])
database = ContactDatabase.objects.create(name="Bulk chaos")
Contact.objects.bulk_create((Contact(database=database, phone=f"+54911{50000000 + n:08d}", first_name=f"C{n}")
                             for n in range(count)), batch_size=2000)
provider = Provider.objects.create(name="Meta bulk", kind="meta", config={
    "access_token": os.environ["BULK_TOKEN"], "app_secret": os.environ["BULK_APP_SECRET"]})
campaign = Campaign.objects.create(name="Meta bulk", contact_database=database)
line = Line.objects.create(name="Meta bulk", number="+15550109998", provider=provider, campaign=campaign,
                           config={"phone_number_id": os.environ["BULK_PHONE_NUMBER_ID"]})
template = MessageTemplate.objects.create(line=line, provider_template_id="t1", name="promo", language="es",
                                          body="Hola {{1}}", status="approved")
admin = get_user_model().objects.get(username="admin")
job = create_bulk_send(user=admin, request=BulkRequest(name="chaos", line_id=line.pk, template_id=template.pk,
                                                       params=["{first_name}"], source="database",
                                                       rate_per_second=1000))
print(line.pk, job.pk)
"""


@pytest.fixture
def meta_fake() -> Iterator[MetaFake]:
    with MetaFake(access_token=TOKEN, phone_number_id=PHONE_NUMBER_ID, waba_id=WABA_ID) as fake:
        yield fake


def worker_env(fake: MetaFake) -> dict[str, str]:
    return {"META_GRAPH_BASE_URL": fake.url, "META_GRAPH_VERSION": VERSION, "PROVIDER_HTTP_TIMEOUT": "5",
            "CONVERSA_BULK_LEASE_SECONDS": "3", "CONVERSA_BULK_SLICE_SECONDS": "2",
            "CONVERSA_BULK_CONCURRENCY": str(CONCURRENCY)}


def create_job(deployment: Deployment) -> tuple[int, int]:
    env = deployment.env(BULK_TOKEN=TOKEN, BULK_APP_SECRET=APP_SECRET, BULK_PHONE_NUMBER_ID=PHONE_NUMBER_ID,
                         BULK_RECIPIENTS=str(RECIPIENTS))
    done = subprocess.run([str(BIN / "python"), "manage.py", "shell", "-c", SETUP], cwd=REPO, env=env,
                          capture_output=True, timeout=240)
    assert done.returncode == 0, done.stderr.decode()
    line_id, job_id = done.stdout.decode().split()[-2:]
    return int(line_id), int(job_id)


def bulk_references(fake: MetaFake) -> dict[str, int]:
    return {ref: n for ref, n in fake.accepted_per_reference().items() if ref.startswith("bulk:")}


def job_status(deployment: Deployment, job_id: int) -> str:
    return str(deployment.sql("SELECT status FROM outreach_bulksend WHERE id = %s", job_id)[0][0])


def post_delivered(web: str, line_id: int, accepted: list[tuple[str, str]]) -> None:
    """Meta reports these sends (wamid, our reference) delivered, echoing our reference, 500 a webhook."""
    items = [{"id": wamid, "status": "delivered", "timestamp": "1698266946", "recipient_id": "5491150000000",
              "biz_opaque_callback_data": reference} for wamid, reference in accepted]
    for start in range(0, len(items), 500):
        body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{
            "field": "messages", "value": {"messaging_product": "whatsapp",
                                           "metadata": {"phone_number_id": PHONE_NUMBER_ID},
                                           "statuses": items[start:start + 500]}}]}]})
        response = httpx.post(f"{web}/webhooks/meta/{line_id}/", content=body, timeout=60, headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": hmac_sha256_signature(secret=APP_SECRET, body=body.encode())})
        assert response.status_code == 200, response.text


@pytest.mark.timeout(900)  # 10,000 sends on a shared two-core machine, the cluster's first setup included
def test_kill_9_during_a_bulk_send_of_ten_thousand_sends_each_once(deployment: Deployment, meta_fake: MetaFake):
    line_id, job_id = create_job(deployment)
    victim, _ = deployment.worker("victim", **worker_env(meta_fake))
    poll("a fifth of the bulk send made", lambda: len(meta_fake.accepted) >= RECIPIENTS // 5, deadline=120,
         alive=deployment.check_alive)
    os.kill(victim.pid, signal.SIGKILL)  # mid-round: claims taken, calls in flight
    victim.wait(10)
    at_kill = len(meta_fake.accepted)
    assert at_kill < RECIPIENTS
    deployment.worker("survivor", **worker_env(meta_fake))
    poll("the bulk send done", lambda: job_status(deployment, job_id) == "done", deadline=600,
         alive=deployment.check_alive)

    sent = bulk_references(meta_fake)
    twice = {reference: n for reference, n in sent.items() if n > 1}
    assert not twice, f"sent more than once: {twice}"
    rows = dict(deployment.sql("SELECT status, count(*) FROM outreach_bulkrecipient WHERE job_id = %s GROUP BY status",
                               job_id))
    assert sum(rows.values()) == RECIPIENTS
    assert set(rows) <= {"sent", "unconfirmed"}, rows
    # At most the victim's last round is unconfirmed; all the rest was sent, once.
    assert rows.get("unconfirmed", 0) <= CONCURRENCY, rows
    assert len(sent) >= RECIPIENTS - CONCURRENCY
    unsent = deployment.sql("SELECT id, status, error_code FROM outreach_bulkrecipient WHERE job_id = %s AND NOT "
                            "(('bulk:' || id) = ANY(%s))", job_id, list(sent))
    assert all((status, code) == ("unconfirmed", "interrupted") for _, status, code in unsent), unsent

    # Meta's statuses (echoing our reference) confirm what it accepted: every send left unconfirmed
    # that did reach it, and a thousand others (all 10,000 would only time the webhook worker).
    unconfirmed = {f"bulk:{pk}" for (pk,) in deployment.sql(
        "SELECT id FROM outreach_bulkrecipient WHERE job_id = %s AND status = 'unconfirmed'", job_id)}
    reported = [(wamid, ref) for wamid, ref, _ in meta_fake.accepted if ref in unconfirmed]
    reported += [(wamid, ref) for wamid, ref, _ in meta_fake.accepted if ref not in unconfirmed][:1000]
    web = deployment.web()
    post_delivered(web, line_id, reported)
    poll("the statuses applied", lambda: deployment.unprocessed() == 0, deadline=180, alive=deployment.check_alive)
    final = dict(deployment.sql("SELECT status, count(*) FROM outreach_bulkrecipient WHERE job_id = %s "
                                "GROUP BY status", job_id))
    expected = {"delivered": len(reported), "sent": len(sent) - len(reported), "unconfirmed": len(unsent)}
    assert final == {status: n for status, n in expected.items() if n}, final

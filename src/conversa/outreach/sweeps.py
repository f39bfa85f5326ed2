"""The bulk sends' periodic job, run by the worker's sweep (registered in OutreachConfig.ready())."""

from __future__ import annotations

from django.db.models import OuterRef, Q
from django.utils import timezone

from conversa.core.worker import live_task_exists
from conversa.outreach.models import BulkSend
from conversa.outreach.tasks import run_bulk_send


def resume_orphaned_jobs() -> int:
    """Running jobs nobody holds and no task will run: their runner died (its lease ran out), their
    line was busy with another job, or an enqueue was lost. Enqueued again; the runner that takes
    one marks the dead runner's claims unconfirmed and resumes the rows never claimed."""
    now = timezone.now()
    orphans = list(
        BulkSend.objects.filter(status=BulkSend.Status.RUNNING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .filter(Q(backoff_until__isnull=True) | Q(backoff_until__lte=now))
        .exclude(live_task_exists(task=run_bulk_send, first_arg=OuterRef("pk")))
        .values_list("pk", flat=True)[:50])
    for job_id in orphans:
        run_bulk_send.enqueue(job_id)
    return len(orphans)

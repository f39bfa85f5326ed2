from __future__ import annotations

from django_tasks import task

from conversa.whatsapp import services


@task(queue_name="webhooks")
def process_webhook_event(event_id: int) -> str:
    """No longer enqueued (workers claim stored events themselves, services.process_webhook_batch);
    kept so rows enqueued by an older version still run."""
    return services.process_webhook_event(event_id)


@task(queue_name="webhooks")
def retry_webhook_item_failures(event_id: int) -> str:
    return services.retry_webhook_item_failures(event_id)

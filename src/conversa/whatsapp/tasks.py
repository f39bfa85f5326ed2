from __future__ import annotations

from django_tasks import task

from conversa.whatsapp import services
from conversa.whatsapp.models import Line


@task(queue_name="webhooks")
def process_webhook_event(event_id: int) -> str:
    return services.process_webhook_event(event_id)


@task(queue_name="default")
def sync_line_templates(line_id: int) -> int:
    return services.sync_templates(Line.objects.select_related("provider").get(pk=line_id))

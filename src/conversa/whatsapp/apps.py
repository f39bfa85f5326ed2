from django.apps import AppConfig


class WhatsappConfig(AppConfig):
    name = "conversa.whatsapp"
    label = "whatsapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversa.core.health import register_health_reading
        from conversa.core.wake import WEBHOOKS
        from conversa.core.worker import register_batch_job, register_sweep
        from conversa.realtime.stream import register_stream
        from conversa.whatsapp.rejections import prune_rejected_webhooks
        from conversa.whatsapp.services import process_webhook_batch, release_webhook_claims
        from conversa.whatsapp.streams import sandbox_audience
        from conversa.whatsapp.sweeps import (
            requeue_overdue_webhook_events,
            retry_failed_webhook_items,
            webhook_backlog,
            webhook_item_failures,
        )

        register_stream(name="sandbox", resolver=sandbox_audience)
        register_batch_job(name="webhook_events", queue="webhooks", channel=WEBHOOKS,
                           run=lambda worker_id: process_webhook_batch(worker_id=worker_id),
                           release=lambda worker_id: release_webhook_claims(worker_id=worker_id))
        register_sweep(name="webhook_events", job=requeue_overdue_webhook_events)
        register_sweep(name="rejected_webhooks", job=prune_rejected_webhooks)
        register_sweep(name="webhook_item_failures", job=retry_failed_webhook_items)
        register_health_reading(name="webhook_backlog", read=webhook_backlog)
        register_health_reading(name="webhook_item_failures", read=webhook_item_failures)

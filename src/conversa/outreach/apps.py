from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OutreachConfig(AppConfig):
    """Bulk template sends ("mensajes masivos"): jobs, their recipients and the opt-out lists."""

    name = "conversa.outreach"
    label = "outreach"
    verbose_name = _("Bulk sends")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversa.core.worker import register_sweep
        from conversa.inbox.hooks import register_inbound_observer, register_status_fallback
        from conversa.outreach.actions import apply_bulk_status, on_customer_message, on_customer_messages
        from conversa.outreach.sweeps import resume_orphaned_jobs

        register_inbound_observer(observer=on_customer_message, in_bulk=on_customer_messages)
        register_status_fallback(handler=apply_bulk_status)
        register_sweep(name="bulk_sends", job=resume_orphaned_jobs)

from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "conversa.realtime"
    label = "realtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversa.core.worker import register_sweep
        from conversa.realtime.services import prune_expired_events

        register_sweep(name="events_pruned", job=prune_expired_events)

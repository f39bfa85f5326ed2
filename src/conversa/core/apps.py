from typing import Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _compiled_timestamps(sender: Any, connection: Any, **kwargs: Any) -> None:
    from conversa.core.pgtypes import use_compiled_timestamp_loader

    use_compiled_timestamp_loader(connection=connection)


class CoreConfig(AppConfig):
    name = "conversa.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from conversa.core.dbpool import retry_connections_steadily
        from conversa.core.health import register_health_reading, workers_reading
        from conversa.core.worker import (
            expire_abandoned_tasks,
            prune_finished_tasks,
            prune_stale_heartbeats,
            register_sweep,
        )

        retry_connections_steadily(every=settings.CONVERSA_DB_RECONNECT_EVERY)
        connection_created.connect(_compiled_timestamps, dispatch_uid="conversa.core.pgtypes")
        register_sweep(name="abandoned_tasks", job=expire_abandoned_tasks)
        register_sweep(name="finished_tasks_pruned", job=prune_finished_tasks)
        register_sweep(name="heartbeats_pruned", job=prune_stale_heartbeats)
        register_health_reading(name="workers", read=workers_reading)

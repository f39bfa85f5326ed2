from __future__ import annotations

from django.db import models


class StreamEvent(models.Model):
    """Every event published to browsers, kept so a reconnecting socket can catch up.

    Channel layers deliver at most once; this log is what makes "nothing missed" true.
    """

    type = models.CharField(max_length=50)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        # The table keeps its first name: operators' dumps exclude it by name (docs/operations.md).
        db_table = "realtime_event"

    def __str__(self) -> str:
        return f"{self.pk} {self.type}"


class EventTarget(models.Model):
    """One audience group of an event (campaign-<id>, agent-<id>, supervisors)."""

    event = models.ForeignKey(StreamEvent, on_delete=models.CASCADE, related_name="targets")
    group = models.CharField(max_length=80)

    class Meta:
        indexes = [models.Index(fields=["group", "event"], name="event_target_group_idx")]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.group}"

"""Back office for bulk sends: the opt-out lists are edited here; jobs are read-only (they are run
and changed from the supervisor pages, through the actions)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from conversa.outreach.models import BulkSend, OptOut


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    list_display = ["phone", "line", "keyword", "created_at"]
    list_filter = ["line"]
    search_fields = ["phone"]
    readonly_fields = ["keyword", "created_at"]


@admin.register(BulkSend)
class BulkSendAdmin(admin.ModelAdmin):
    list_display = ["name", "line", "template", "status", "created_by", "created_at"]
    list_filter = ["status", "line"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

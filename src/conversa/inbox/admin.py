"""Back office view of conversations, messages and the audit trail: read-only. A write from here
would skip what the services do (audit rows, live events, handing chats out), so the only writes
are actions that call them."""

from __future__ import annotations

import datetime

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _

from conversa.core.admin import ReadOnly
from conversa.inbox.models import AuditEntry, Conversation, Message


class MessageInline(ReadOnly, admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = ("created_at", "direction", "kind", "body", "status", "error_title", "provider_message_id")
    readonly_fields = fields
    show_change_link = True


@admin.register(Conversation)
class ConversationAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["id", "customer_phone", "customer_profile_name", "campaign", "line", "agent", "status",
                    "last_message_at", "is_outbound", "expired"]
    # "Expired" then "Close selected…": housekeeping of expired conversations by hand.
    list_filter = ["status", "expired", "campaign", "line", "is_outbound"]
    search_fields = ["customer_phone", "customer_profile_name", "contact__first_name", "contact__last_name"]
    inlines = [MessageInline]
    actions = ["close_by_system"]

    def has_close_permission(self, request: HttpRequest) -> bool:
        """Closing goes through the service; it needs the model's change permission all the same."""
        return request.user.has_perm("inbox.change_conversation")

    @admin.action(description="Close selected open conversations (by the system)", permissions=["close"])
    def close_by_system(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        from conversa.inbox.actions.closing import close_stale_conversations

        open_ids = list(queryset.exclude(status=Conversation.Status.CLOSED).values_list("pk", flat=True))
        # "Idle for zero seconds" selects every one of them; the service audits and announces each.
        closed = close_stale_conversations(older_than=datetime.timedelta(0), statuses=["new", "attended"],
                                           actor=request.user, only_ids=open_ids)  # type: ignore[arg-type]
        self.message_user(request, _("%(count)d conversation(s) closed.") % {"count": closed}, messages.SUCCESS)


@admin.register(Message)
class MessageAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["id", "conversation", "direction", "kind", "status", "created_at", "error_code", "error_title"]
    list_filter = ["direction", "kind", "status"]
    search_fields = ["provider_message_id", "body"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnly, admin.ModelAdmin):
    """The audit trail."""

    list_display = ["created_at", "kind", "conversation", "contact", "actor"]
    list_filter = ["kind"]

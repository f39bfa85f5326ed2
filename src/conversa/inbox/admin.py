from __future__ import annotations

import datetime

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _

from conversa.inbox.models import Conversation, ConversationEvent, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = ("created_at", "direction", "kind", "body", "status", "error_title", "provider_message_id")
    readonly_fields = fields
    show_change_link = True


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "customer_phone", "customer_profile_name", "campaign", "line", "agent", "status",
                    "last_message_at", "is_outbound"]
    list_filter = ["status", "campaign", "line", "is_outbound"]
    search_fields = ["customer_phone", "customer_profile_name", "contact__first_name", "contact__last_name"]
    raw_id_fields = ["contact", "agent"]
    readonly_fields = ["created_at", "attended_at", "closed_at", "last_inbound_at", "last_message_at"]
    inlines = [MessageInline]
    actions = ["close_by_system"]

    @admin.action(description="Close selected open conversations (by the system)")
    def close_by_system(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        from conversa.inbox.services import close_stale_conversations

        open_ids = list(queryset.exclude(status=Conversation.Status.CLOSED).values_list("pk", flat=True))
        # "Idle for zero seconds" selects every one of them; the service audits and announces each.
        closed = close_stale_conversations(older_than=datetime.timedelta(0), statuses=["new", "attended"],
                                           actor=request.user, only_ids=open_ids)  # type: ignore[arg-type]
        self.message_user(request, _("%(count)d conversation(s) closed.") % {"count": closed}, messages.SUCCESS)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "direction", "kind", "status", "created_at", "error_title"]
    list_filter = ["direction", "kind", "status"]
    search_fields = ["provider_message_id", "body"]
    raw_id_fields = ["conversation", "reply_to", "sender", "template"]


@admin.register(ConversationEvent)
class ConversationEventAdmin(admin.ModelAdmin):
    """The audit trail: read-only."""

    list_display = ["created_at", "kind", "conversation", "contact", "actor"]
    list_filter = ["kind"]
    raw_id_fields = ["conversation", "contact", "actor"]

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False

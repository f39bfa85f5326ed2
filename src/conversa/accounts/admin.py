"""Back office for people: agent groups (with their skills) and each user's agent profile."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from knox.models import AuthToken

from conversa.accounts.models import WHATSAPP_SKILL, AgentGroup, AgentProfile, PauseReason
from conversa.accounts.tokens import revoke_token_set, token_expires_at, token_is_expired

User = get_user_model()


class AgentGroupForm(forms.ModelForm):
    whatsapp = forms.BooleanField(label=_("WhatsApp skill"), required=False,
                                  help_text=_("Members may work WhatsApp conversations (general and personal inbox)."))

    class Meta:
        model = AgentGroup
        fields = ["name", "whatsapp", "skills"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["whatsapp"].initial = WHATSAPP_SKILL in (self.instance.skills or [])
        self.fields["skills"].required = False

    def clean_skills(self) -> list[str]:
        skills = self.cleaned_data.get("skills") or []
        if not isinstance(skills, list) or not all(isinstance(s, str) for s in skills):
            raise forms.ValidationError(_('Skills must be a list of names, e.g. ["whatsapp", "voice"].'))
        return skills

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        skills = [s for s in data.get("skills") or [] if s != WHATSAPP_SKILL]
        if data.get("whatsapp"):
            skills.insert(0, WHATSAPP_SKILL)
        data["skills"] = skills
        return data


@admin.register(AgentGroup)
class AgentGroupAdmin(admin.ModelAdmin):
    form = AgentGroupForm
    list_display = ["name", "skill_list", "member_count"]
    search_fields = ["name"]

    @admin.display(description=_("skills"))
    def skill_list(self, obj: AgentGroup) -> str:
        return ", ".join(obj.skills or [])

    @admin.display(description=_("members"))
    def member_count(self, obj: AgentGroup) -> int:
        return obj.members.count()


@admin.register(PauseReason)
class PauseReasonAdmin(admin.ModelAdmin):
    """Reasons agents choose when they pause; productive pauses count as work in the reports."""

    list_display = ["name", "productive", "active", "order"]
    list_editable = ["productive", "active", "order"]
    search_fields = ["name"]


# An agent's status (ready / paused / offline) is hers to set, through accounts.services.set_status
# (which announces it live and hands her waiting chats): read-only here.
@admin.register(AgentProfile)
class AgentProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "group", "status", "pause_reason", "capacity"]
    list_filter = ["role", "group", "status"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    autocomplete_fields = ["user"]
    readonly_fields = ["status", "pause_reason"]
    exclude = ["offline_by_choice", "last_seen_at"]


class AgentProfileInline(admin.StackedInline):
    model = AgentProfile
    can_delete = False
    fields = ["role", "group", "status", "capacity"]
    readonly_fields = ["status"]
    extra = 1
    max_num = 1


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class ConversaUserAdmin(UserAdmin):
    inlines = [AgentProfileInline]
    list_display = ["username", "first_name", "last_name", "email", "is_staff", "role", "group"]

    @admin.display(description=_("role"))
    def role(self, obj: Any) -> str:
        profile = getattr(obj, "profile", None)
        return profile.get_role_display() if profile else "—"

    @admin.display(description=_("agent group"))
    def group(self, obj: Any) -> str:
        profile = getattr(obj, "profile", None)
        return str(profile.group) if profile and profile.group else "—"


# --------------------------------------------------------------------------- API tokens
# Who holds a token and until when, with a bulk "revoke" action: revoking deletes the token, so its
# holder must log in again. Only digests are stored, so there is no key to show, and admins do not
# mint tokens for others (people log in at the token endpoint).
if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "created", "expires_at", "expired")
    list_select_related = ("user",)
    search_fields = ("user__username",)
    ordering = ("-created",)
    fields = ("user", "created", "expiry")
    readonly_fields = ("user", "created", "expiry")
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuthToken | None = None) -> bool:
        return False

    @admin.display(description=_("expires"))
    def expires_at(self, obj: AuthToken) -> datetime:
        return token_expires_at(token=obj)

    @admin.display(description=_("expired"), boolean=True)
    def expired(self, obj: AuthToken) -> bool:
        return token_is_expired(token=obj)

    @admin.action(description=_("Revoke selected tokens"), permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[AuthToken]) -> None:
        count = revoke_token_set(tokens=queryset)
        self.message_user(request, ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", count)
                          % {"count": count})

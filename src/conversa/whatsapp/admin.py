"""Back-office configuration of providers, lines and templates, and a read-only view of webhooks.

Vendor credentials live in the `config` JSON of Provider and Line; the forms below edit them as
named fields (secrets as password inputs) so nobody has to type JSON or guess key names. Which fields
exist, and which a kind requires, each adapter declares (`provider_fields`, `line_fields`).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Literal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from conversa.core.admin import NoAddOrChange
from conversa.whatsapp import services
from conversa.whatsapp.adapters import adapter_class, adapter_classes, get_adapter
from conversa.whatsapp.adapters.base import ConfigField, SendError
from conversa.whatsapp.models import (
    InteractiveMenu,
    Line,
    MenuOption,
    MessageTemplate,
    Provider,
    RejectedWebhook,
    WebhookEvent,
    WebhookItemFailure,
)

SECRET = forms.PasswordInput(render_value=True, attrs={"autocomplete": "new-password"})
Scope = Literal["provider", "line"]


def _config_fields(scope: Scope) -> dict[str, tuple[ConfigField, ...]]:
    """Each adapter's own config fields, by provider kind (the adapters declare them)."""
    return {kind: cls.provider_fields if scope == "provider" else cls.line_fields
            for kind, cls in adapter_classes().items()}


def _declared(scope: Scope) -> dict[str, forms.Field]:
    """One form field per config key of every kind (declared, so the admin renders them). Not
    required here: which fields a record needs depends on its kind, checked in `clean`."""
    return {
        f"cfg_{spec.key}": forms.CharField(label=spec.label, help_text=spec.help_text, required=False,
                                           widget=SECRET if spec.secret else forms.TextInput(attrs={"size": 60}))
        for specs in _config_fields(scope).values() for spec in specs
    }


def _fieldsets(base: list[str], scope: Scope) -> Any:
    classes = adapter_classes()
    return [(None, {"fields": base})] + [
        (classes[kind].title, {"fields": [f"cfg_{spec.key}" for spec in specs]})
        for kind, specs in _config_fields(scope).items() if specs
    ]


class ConfigForm(forms.ModelForm):
    """Edits the model's `config` JSON through the declared `cfg_<key>` fields."""

    config_scope: Scope = "provider"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = self.instance.config or {}
        for spec in self._all_specs():
            self.fields[f"cfg_{spec.key}"].initial = config.get(spec.key, "")

    def _all_specs(self) -> list[ConfigField]:
        return [spec for specs in _config_fields(self.config_scope).values() for spec in specs]

    def _kind(self, data: dict[str, Any]) -> str | None:
        """The provider kind whose required fields apply (None: not known yet, e.g. invalid): a
        provider's own `kind`, or a line's through its provider."""
        if self.config_scope == "provider":
            return data.get("kind")
        provider = data.get("provider")
        return provider.kind if provider is not None else None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = self._kind(data)
        for spec in _config_fields(self.config_scope).get(kind or "", ()):
            if spec.required and not (data.get(f"cfg_{spec.key}") or "").strip():
                self.add_error(f"cfg_{spec.key}", _("%(provider)s needs this field.")
                               % {"provider": adapter_classes()[str(kind)].title})
        return data

    def save(self, commit: bool = True) -> Any:
        # Keys the form does not know are kept untouched; an emptied field removes its key.
        merged = dict(self.instance.config or {})
        for spec in self._all_specs():
            value = (self.cleaned_data.get(f"cfg_{spec.key}") or "").strip()
            if value:
                merged[spec.key] = value
            else:
                merged.pop(spec.key, None)
        self.instance.config = merged
        return super().save(commit)


class _ProviderForm(ConfigForm):
    config_scope = "provider"

    class Meta:
        model = Provider
        fields = ["name", "kind", "webhook_secret"]
        widgets = {"webhook_secret": SECRET}
        help_texts = {
            "webhook_secret": _("GupShup signs nothing: its webhooks must carry this secret (append "
                                "?token=<secret> to the callback URL). The sandbox, when it is set, requires an "
                                "X-Conversa-Signature HMAC of the body made with it. Not used by Meta, which "
                                "signs with the app secret."),
        }


class _LineForm(ConfigForm):
    config_scope = "line"

    class Meta:
        model = Line
        fields = ["name", "number", "provider", "campaign", "menu", "welcome_message", "goodbye_message",
                  "time_group", "out_of_hours_message", "out_of_hours_action", "send_read_receipts", "active"]


# ModelFormMetaclass only collects fields declared at class creation: build the classes with them.
ProviderForm = type("ProviderForm", (_ProviderForm,), _declared("provider"))
LineForm = type("LineForm", (_LineForm,), _declared("line"))


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    fieldsets = _fieldsets(["name", "kind", "webhook_secret"], "provider")
    list_display = ["name", "kind", "line_count", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name"]

    @admin.display(description=_("lines"))
    def line_count(self, obj: Provider) -> int:
        return obj.lines.count()


def public_base_url(request: HttpRequest | None) -> str:
    """Where providers reach us: PUBLIC_BASE_URL when the operator set it, else the host the
    administrator is browsing (a fixed 127.0.0.1:8000 was wrong on every real install)."""
    if settings.PUBLIC_BASE_URL_CONFIGURED or request is None:
        return str(settings.PUBLIC_BASE_URL)
    return request.build_absolute_uri("/").rstrip("/")


def webhook_url(line: Line, request: HttpRequest | None = None) -> str:
    return public_base_url(request) + reverse("webhook", kwargs={"kind": line.provider.kind, "line_id": line.pk})


# The request of the change form being rendered: read-only fields (the callback URL) get only the
# object, and the URL depends on the host the administrator browses.
_current_request: ContextVar[HttpRequest | None] = ContextVar("line_admin_request", default=None)


@admin.register(Line)
class LineAdmin(admin.ModelAdmin):
    form = LineForm
    fieldsets = _fieldsets(["name", "number", "provider", "campaign", "menu", "callback_url", "welcome_message",
                            "goodbye_message", "time_group", "out_of_hours_message", "out_of_hours_action",
                            "send_read_receipts", "active"], "line")
    list_display = ["name", "number", "provider", "campaign", "active", "health_error"]
    list_filter = ["provider__kind", "active"]
    search_fields = ["name", "number"]
    readonly_fields = ["callback_url"]
    actions = ["check_connection", "sync_templates"]

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token = _current_request.set(request)
        try:
            response = super().changeform_view(request, *args, **kwargs)
            if isinstance(response, TemplateResponse):
                response.render()  # while the request is known: the read-only fields are evaluated now
            return response
        finally:
            _current_request.reset(token)

    @admin.display(description=_("webhook (callback) URL"))
    def callback_url(self, obj: Line) -> SafeString | str:
        if not obj.pk:
            return str(_("Save the line first."))
        url = webhook_url(obj, _current_request.get())
        return format_html("<code>{}{}</code>", url, adapter_class(obj.provider.kind).callback_url_suffix)

    @admin.action(description=_("Check connection"))
    def check_connection(self, request: HttpRequest, queryset: QuerySet[Line]) -> None:
        for line in queryset.select_related("provider"):
            try:
                result = get_adapter(line).check_connection()
            except (SendError, LookupError) as exc:
                self.message_user(request, f"{line}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{line}: {result}", messages.SUCCESS)

    @admin.action(description=_("Sync templates from provider"))
    def sync_templates(self, request: HttpRequest, queryset: QuerySet[Line]) -> None:
        _sync(self, request, queryset.select_related("provider"))


def _sync(model_admin: admin.ModelAdmin, request: HttpRequest, lines: Any) -> None:
    for line in lines:
        try:
            count = services.sync_templates(line)
        except (SendError, LookupError) as exc:
            model_admin.message_user(request, f"{line}: could not sync templates: {exc}", messages.ERROR)
        else:
            model_admin.message_user(request, f"{line}: {count} template(s) synced.", messages.SUCCESS)


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "language", "line", "status", "category", "synced_at"]
    list_filter = ["line", "status", "category", "language"]
    search_fields = ["name", "body", "provider_template_id"]
    readonly_fields = ["synced_at"]
    actions = ["sync_from_provider"]

    @admin.action(description=_("Sync templates from provider"))
    def sync_from_provider(self, request: HttpRequest, queryset: QuerySet[MessageTemplate]) -> None:
        """Re-syncs the lines of the selected templates (new lines: use the action on Lines)."""
        lines = Line.objects.filter(pk__in=queryset.values("line_id")).select_related("provider")
        _sync(self, request, lines)


class ProcessedFilter(admin.SimpleListFilter):
    title = _("processed")
    parameter_name = "processed"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", str(_("Processed"))), ("no", str(_("Not processed")))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> QuerySet[WebhookEvent]:
        if self.value() == "yes":
            return queryset.filter(processed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(processed_at__isnull=True)
        return queryset


@admin.register(WebhookEvent)
class WebhookEventAdmin(NoAddOrChange, admin.ModelAdmin):
    """What providers sent, exactly as received: for support, never edited."""

    list_display = ["id", "line", "provider_kind", "received_at", "processed_at", "attempts", "short_error"]
    list_filter = [ProcessedFilter, "provider_kind", "line"]
    search_fields = ["body_sha256", "error"]
    fields = ("line", "provider_kind", "received_at", "processed_at", "attempts", "error", "headers", "payload",
              "body_sha256")
    readonly_fields = fields

    @admin.display(description=_("error"))
    def short_error(self, obj: WebhookEvent) -> str:
        return (obj.error or "")[:80]

    @admin.display(description=_("payload"))
    def payload(self, obj: WebhookEvent) -> SafeString:
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>",
                           bytes(obj.body).decode("utf-8", errors="replace"))


@admin.register(RejectedWebhook)
class RejectedWebhookAdmin(NoAddOrChange, admin.ModelAdmin):
    """Samples of callbacks answered 400/413 (never stored as events): read-only, for support."""

    list_display = ["id", "line", "received_at", "status_code", "reason", "size", "verified"]
    list_filter = ["status_code", "verified", "line"]
    fields = ("line", "received_at", "status_code", "reason", "verified", "size", "headers", "sample")
    readonly_fields = fields

    @admin.display(description=_("body (first bytes)"))
    def sample(self, obj: RejectedWebhook) -> SafeString:
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>",
                           bytes(obj.body_sample).decode("utf-8", errors="backslashreplace"))


@admin.register(WebhookItemFailure)
class WebhookItemFailureAdmin(NoAddOrChange, admin.ModelAdmin):
    """Items of stored webhooks that failed while the rest of their batch was applied: retried by
    the sweep with back-off; those without a next attempt have been given up on. Read-only."""

    list_display = ["id", "event", "kind", "position", "item_ref", "attempts", "next_attempt_at", "resolved_at",
                    "error"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter)]
    fields = ("event", "kind", "position", "item_ref", "error", "attempts", "first_failed_at", "next_attempt_at",
              "resolved_at")
    readonly_fields = fields


class MenuOptionInline(admin.TabularInline):
    model = MenuOption
    fk_name = "menu"
    extra = 1
    fields = ["order", "title", "description", "action", "campaign", "submenu", "closing_message"]


@admin.register(InteractiveMenu)
class InteractiveMenuAdmin(admin.ModelAdmin):
    """Menus sent as WhatsApp lists (up to 10 options) before a conversation reaches a campaign."""

    list_display = ["name", "body", "timeout_minutes"]
    inlines = [MenuOptionInline]

"""Back-office configuration of providers, lines and templates, and a read-only view of webhooks.

Vendor credentials live in the `config` JSON of Provider and Line; the forms below edit them as
named fields (secrets as password inputs) so nobody has to type JSON or guess key names.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from conversa.whatsapp import services
from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.adapters.base import SendError
from conversa.whatsapp.models import InteractiveMenu, Line, MenuOption, MessageTemplate, Provider, WebhookEvent

ConfigField = tuple[str, Any, Any, bool]  # key, label (lazy str), help text (lazy str), is secret
SECRET = forms.PasswordInput(render_value=True, attrs={"autocomplete": "new-password"})

# (config key, label, help text, is secret) per provider kind.
PROVIDER_FIELDS: dict[str, list[ConfigField]] = {
    "meta": [
        ("access_token", _("Access token"),
         _("Meta: a permanent System User access token with whatsapp_business_messaging and "
           "whatsapp_business_management permissions (Business Settings → System users)."), True),
        ("app_secret", _("App secret"),
         _("Meta: the app's secret (App settings → Basic). Every webhook is checked against its "
           "X-Hub-Signature-256 with it; without it all webhooks are refused."), True),
        ("business_id", _("Business id"), _("Meta: the Business Manager id (optional, for reference)."), False),
    ],
    "gupshup": [
        ("api_key", _("API key"), _("GupShup: the account's API key (dashboard → profile)."), True),
    ],
    "sandbox": [
        ("api_url", _("Relay URL"), _("Sandbox: optional HTTP endpoint sends are POSTed to."), False),
    ],
}
LINE_FIELDS: dict[str, list[ConfigField]] = {
    "meta": [
        ("phone_number_id", _("Phone number id"),
         _("Meta: the number's Phone number ID (WhatsApp Manager → API setup), not the number itself."), False),
        ("waba_id", _("WhatsApp Business Account id"),
         _("Meta: the WABA id; templates are synced from it."), False),
        ("verify_token", _("Verify token"),
         _("Meta: any string you choose; type the same in the app's webhook settings. Meta sends it "
           "once to verify the callback URL."), True),
    ],
    "gupshup": [
        ("app_name", _("App name"), _("GupShup: the app's name, sent as src.name."), False),
        ("app_id", _("App id"), _("GupShup: the app's id (a UUID); templates are synced from it."), False),
    ],
}


def _declared(spec: dict[str, list[ConfigField]]) -> dict[str, forms.Field]:
    """One form field per known config key of every kind (declared, so the admin renders them)."""
    return {
        f"cfg_{key}": forms.CharField(label=label, help_text=help_text, required=False,
                                      widget=SECRET if secret else forms.TextInput(attrs={"size": 60}))
        for entries in spec.values() for key, label, help_text, secret in entries
    }


def _fieldsets(base: list[str], spec: dict[str, list[ConfigField]]) -> Any:
    names = {"meta": "Meta WhatsApp Cloud API", "gupshup": "GupShup", "sandbox": "Sandbox"}
    return [(None, {"fields": base})] + [
        (names[kind], {"fields": [f"cfg_{key}" for key, *_rest in entries]}) for kind, entries in spec.items()
    ]


class ConfigForm(forms.ModelForm):
    """Edits the model's `config` JSON through the declared `cfg_<key>` fields."""

    config_spec: dict[str, list[ConfigField]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = self.instance.config or {}
        for entries in self.config_spec.values():
            for key, *_rest in entries:
                self.fields[f"cfg_{key}"].initial = config.get(key, "")

    def save(self, commit: bool = True) -> Any:
        # Keys the form does not know are kept untouched; an emptied field removes its key.
        merged = dict(self.instance.config or {})
        for entries in self.config_spec.values():
            for key, *_rest in entries:
                value = (self.cleaned_data.get(f"cfg_{key}") or "").strip()
                if value:
                    merged[key] = value
                else:
                    merged.pop(key, None)
        self.instance.config = merged
        return super().save(commit)


class _ProviderForm(ConfigForm):
    config_spec = PROVIDER_FIELDS

    class Meta:
        model = Provider
        fields = ["name", "kind", "webhook_secret"]
        widgets = {"webhook_secret": SECRET}
        help_texts = {
            "webhook_secret": _("GupShup and sandbox sign nothing: webhooks must carry this secret (GupShup: "
                                "append ?token=<secret> to the callback URL). Not used by Meta, which signs "
                                "with the app secret."),
        }


class _LineForm(ConfigForm):
    config_spec = LINE_FIELDS

    class Meta:
        model = Line
        fields = ["name", "number", "provider", "campaign", "menu", "welcome_message", "goodbye_message",
                  "time_group", "out_of_hours_message", "out_of_hours_action", "active"]


# ModelFormMetaclass only collects fields declared at class creation: build the classes with them.
ProviderForm = type("ProviderForm", (_ProviderForm,), _declared(PROVIDER_FIELDS))
LineForm = type("LineForm", (_LineForm,), _declared(LINE_FIELDS))


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    fieldsets = _fieldsets(["name", "kind", "webhook_secret"], PROVIDER_FIELDS)
    list_display = ["name", "kind", "line_count", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name"]

    @admin.display(description=_("lines"))
    def line_count(self, obj: Provider) -> int:
        return obj.lines.count()


def webhook_url(line: Line) -> str:
    return settings.PUBLIC_BASE_URL + reverse("webhook", kwargs={"kind": line.provider.kind, "line_id": line.pk})


@admin.register(Line)
class LineAdmin(admin.ModelAdmin):
    form = LineForm
    fieldsets = _fieldsets(["name", "number", "provider", "campaign", "menu", "callback_url", "welcome_message",
                            "goodbye_message", "time_group", "out_of_hours_message", "out_of_hours_action",
                            "active"], LINE_FIELDS)
    list_display = ["name", "number", "provider", "campaign", "active", "health_error"]
    list_filter = ["provider__kind", "active"]
    search_fields = ["name", "number"]
    readonly_fields = ["callback_url"]
    actions = ["check_connection", "sync_templates"]

    @admin.display(description=_("webhook (callback) URL"))
    def callback_url(self, obj: Line) -> SafeString | str:
        if not obj.pk:
            return str(_("Save the line first."))
        url = webhook_url(obj)
        if obj.provider.kind == "gupshup":
            return format_html("<code>{}?token=&lt;webhook secret&gt;</code>", url)
        return format_html("<code>{}</code>", url)

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
class WebhookEventAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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

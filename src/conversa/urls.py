from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from conversa.accounts import api as accounts_api
from conversa.campaigns import api as campaigns_api
from conversa.core.views import healthz, media_link
from conversa.inbox import api as inbox_api
from conversa.inbox import api_contacts as inbox_contacts_api
from conversa.inbox import api_notes as inbox_notes_api
from conversa.outreach import api as outreach_api
from conversa.reports import api as reports_api
from conversa.whatsapp import api as whatsapp_api
from conversa.whatsapp.webhooks import webhook

api_v1 = [
    path("auth/token/", accounts_api.TokenView.as_view(), name="api-token"),
    path("me/", campaigns_api.MeView.as_view(), name="api-me"),
    path("me/status/", campaigns_api.MyStatusView.as_view(), name="api-my-status"),
    path("pause-reasons/", campaigns_api.PauseReasonListView.as_view(), name="api-pause-reasons"),
    path("inbox/general/", inbox_api.GeneralInboxView.as_view(), name="api-general-inbox"),
    path("inbox/personal/", inbox_api.PersonalInboxView.as_view(), name="api-personal-inbox"),
    path("conversations/", inbox_api.ConversationsView.as_view(), name="api-conversations"),
    path("conversations/search/", inbox_notes_api.ConversationSearchView.as_view(), name="api-conversation-search"),
    path("conversations/<int:pk>/", inbox_api.ConversationDetailView.as_view(), name="api-conversation"),
    path("conversations/<int:pk>/notes/", inbox_notes_api.NotesView.as_view(), name="api-notes"),
    path("conversations/<int:pk>/capture/", inbox_api.CaptureView.as_view(), name="api-capture"),
    path("conversations/<int:pk>/read/", inbox_api.ReadView.as_view(), name="api-read"),
    path("conversations/<int:pk>/messages/", inbox_api.MessagesView.as_view(), name="api-messages"),
    path("conversations/<int:pk>/identify/", inbox_api.IdentifyView.as_view(), name="api-identify"),
    path("conversations/<int:pk>/transfer/", inbox_api.TransferView.as_view(), name="api-transfer"),
    path("conversations/<int:pk>/close/", inbox_api.CloseView.as_view(), name="api-close"),
    path("messages/<int:pk>/media/", inbox_api.MessageMediaView.as_view(), name="api-message-media"),
    path("conversations/<int:pk>/messages/<int:message_id>/resend/", inbox_api.ResendView.as_view(),
         name="api-resend"),
    path("contacts/<int:pk>/", inbox_contacts_api.ContactDetailView.as_view(), name="api-contact"),
    path("contacts/<int:pk>/dispositions/", inbox_contacts_api.ContactDispositionsView.as_view(),
         name="api-contact-dispositions"),
    path("campaigns/", campaigns_api.CampaignListView.as_view(), name="api-campaigns"),
    path("campaigns/<int:pk>/agents/", campaigns_api.CampaignAgentsView.as_view(), name="api-campaign-agents"),
    path("campaigns/<int:pk>/contacts/", campaigns_api.CampaignContactsView.as_view(), name="api-campaign-contacts"),
    path("campaigns/<int:pk>/quick-replies/", campaigns_api.CampaignQuickRepliesView.as_view(),
         name="api-quick-replies"),
    path("campaigns/<int:pk>/dispositions/", campaigns_api.CampaignDispositionsView.as_view(),
         name="api-campaign-dispositions"),
    path("reports/summary/", reports_api.SummaryView.as_view(), name="api-reports-summary"),
    path("reports/live/", reports_api.LiveView.as_view(), name="api-reports-live"),
    path("lines/", whatsapp_api.LineListView.as_view(), name="api-lines"),
    path("lines/<int:pk>/templates/", whatsapp_api.LineTemplatesView.as_view(), name="api-line-templates"),
    path("bulk-sends/", outreach_api.BulkSendsView.as_view(), name="api-bulk-sends"),
    path("bulk-sends/<int:pk>/", outreach_api.BulkSendDetailView.as_view(), name="api-bulk-send"),
    *(path(f"bulk-sends/<int:pk>/{verb}/", outreach_api.BulkSendControlView.as_view(verb=verb),
           name=f"api-bulk-send-{verb}") for verb in ("pause", "resume", "cancel")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("webhooks/<str:kind>/<int:line_id>/", webhook, name="webhook"),
    path("healthz/", healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    # Media only through views that check who asks (docs/operations.md, "Media"): never MEDIA_ROOT itself.
    path("media/links/<str:token>/", media_link, name="media-link"),
    path("supervisor/contacts/", include("conversa.web.urls_contacts")),
    path("supervisor/bulk/", include("conversa.outreach.urls")),
    path("supervisor/", include("conversa.reports.urls")),
    path("", include("conversa.web.urls")),
]

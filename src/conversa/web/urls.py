from __future__ import annotations

from django.contrib.auth.views import LogoutView
from django.urls import path

from conversa.web import views, views_agent, views_dialogs, views_history, views_notes

urlpatterns = [
    path("", views.console, name="console"),
    path("c/<int:conversation_id>/", views.console, name="console-conversation"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("console/lists/", views.inbox_lists, name="console-lists"),
    path("console/status/", views_agent.agent_status, name="console-agent-status"),
    path("console/status/change/", views_agent.change_status, name="console-status"),
    path("console/new/", views.new_conversation_dialog, name="console-new-dialog"),
    path("console/start/", views.start_conversation, name="console-start"),
    path("console/phone/", views_dialogs.check_phone, name="console-check-phone"),
    # Browsers ask for /favicon.ico on pages that do not link one (the API's, the admin's).
    path("favicon.ico", views.favicon, name="favicon"),
    path("console/c/<int:pk>/", views.conversation_pane, name="console-pane"),
    path("console/c/<int:pk>/messages/", views.conversation_messages, name="console-messages"),
    path("console/c/<int:pk>/side/", views.side_panel, name="console-side"),
    path("console/c/<int:pk>/read/", views.mark_read, name="console-read"),
    path("console/c/<int:pk>/capture/", views.capture, name="console-capture"),
    path("console/c/<int:pk>/send/", views.send, name="console-send"),
    path("console/c/<int:pk>/messages/<int:message_id>/resend/", views.resend, name="console-resend"),
    path("console/c/<int:pk>/media/<int:message_id>/retry/", views.retry_media, name="console-retry-media"),
    path("console/c/<int:pk>/identify/", views.identify, name="console-identify"),
    path("console/c/<int:pk>/contact/", views.edit_contact, name="console-edit-contact"),
    path("console/c/<int:pk>/transfer/", views.transfer, name="console-transfer"),
    path("console/c/<int:pk>/join/", views_agent.join, name="console-join"),
    path("console/c/<int:pk>/transfer/dialog/", views.transfer_dialog, name="console-transfer-dialog"),
    path("console/c/<int:pk>/close/", views.close, name="console-close"),
    path("console/c/<int:pk>/close/dialog/", views.close_dialog, name="console-close-dialog"),
    path("console/c/<int:pk>/notes/", views_notes.note_box, name="console-note-box"),
    path("console/c/<int:pk>/notes/add/", views_notes.add_note, name="console-add-note"),
    path("console/c/<int:pk>/history/", views_history.history, name="console-history"),
    path("console/c/<int:pk>/history/<int:previous_id>/", views_history.transcript, name="console-transcript"),
    path("console/search/", views_history.search, name="console-search"),
    path("console/closed/", views_history.closed_more, name="console-closed"),
    path("sandbox/", views.sandbox, name="sandbox"),
    path("sandbox/<int:line_id>/messages/", views.sandbox_messages, name="sandbox-messages"),
]

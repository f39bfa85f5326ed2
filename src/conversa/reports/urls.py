from __future__ import annotations

from django.urls import path

from conversa.reports import views, views_audit

urlpatterns = [
    path("", views.dashboard, name="supervisor-dashboard"),
    path("live/", views.live_partial, name="supervisor-live"),
    path("reports/", views.reports, name="supervisor-reports"),
    path("reports/conversations.csv", views.conversations_csv, name="supervisor-reports-csv"),
    path("audit/", views_audit.audit_log_page, name="supervisor-audit"),
]

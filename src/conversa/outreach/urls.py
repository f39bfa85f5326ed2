from __future__ import annotations

from django.urls import path

from conversa.outreach import views

urlpatterns = [
    path("", views.job_list, name="bulk-list"),
    path("new/", views.job_new, name="bulk-new"),
    path("preview/", views.job_preview, name="bulk-preview"),
    path("<int:pk>/", views.job_detail, name="bulk-job"),
    path("<int:pk>/progress/", views.job_progress, name="bulk-progress"),
    path("<int:pk>/recipients.csv", views.job_csv, name="bulk-csv"),
    *(path(f"<int:pk>/{verb}/", views.job_control, {"verb": verb}, name=f"bulk-{verb}")
      for verb in ("pause", "resume", "cancel")),
]

"""Contact databases for supervisors and admins, under /supervisor/contacts/ (web/views_contacts.py)."""

from __future__ import annotations

from django.urls import path

from conversa.web import views_contacts

urlpatterns = [
    path("", views_contacts.databases, name="contact-databases"),
    path("<int:database_id>/", views_contacts.contact_list, name="contact-list"),
    path("<int:database_id>/import/", views_contacts.import_upload, name="contact-import"),
    path("<int:database_id>/export.csv", views_contacts.export, name="contact-export"),
    path("imports/<int:import_id>/", views_contacts.import_page, name="contact-import-page"),
    path("imports/<int:import_id>/progress/", views_contacts.import_progress, name="contact-import-progress"),
    path("imports/<int:import_id>/retry/", views_contacts.import_retry, name="contact-import-retry"),
    path("imports/<int:import_id>/errors.csv", views_contacts.import_errors, name="contact-import-errors"),
]

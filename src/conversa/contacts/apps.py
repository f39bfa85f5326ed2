from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "conversa.contacts"
    label = "contacts"
    default_auto_field = "django.db.models.BigAutoField"

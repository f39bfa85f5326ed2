from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "conversa.contacts"
    label = "contacts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversa.contacts.imports import discard_spent_files
        from conversa.core.worker import register_sweep

        register_sweep(name="contact_import_files", job=discard_spent_files)

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "conversa.web"
    label = "web"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib import admin

        # The admin home opens with the setup checklist (templates/admin/conversa_index.html).
        admin.site.index_template = "admin/conversa_index.html"

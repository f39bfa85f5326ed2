from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "conversa.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversa.accounts import tokens  # noqa: F401  (connects the revoke-on-logout receiver)

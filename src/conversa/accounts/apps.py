from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "conversa.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversa.accounts import tokens  # (importing it connects the revoke-on-logout receiver)
        from conversa.realtime.auth import register_token_lookup

        register_token_lookup(lookup=tokens.user_for_token)  # websocket clients presenting an API token

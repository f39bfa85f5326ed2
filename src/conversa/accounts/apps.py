from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "conversa.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversa.accounts import services, tokens  # (importing them connects the logout receivers)
        from conversa.core.worker import register_sweep
        from conversa.realtime.auth import register_token_lookup
        from conversa.realtime.presence import register_presence

        register_token_lookup(lookup=tokens.user_for_token)  # websocket clients presenting an API token
        register_presence(opened=services.socket_opened, closed=services.socket_closed,
                          refreshed=services.sockets_refreshed)
        register_sweep(name="agents_offline", job=services.offline_after_disconnect)

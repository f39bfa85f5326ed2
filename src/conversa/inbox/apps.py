from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "conversa.inbox"
    label = "inbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversa.accounts.services import register_ready_handler
        from conversa.core.worker import register_sweep
        from conversa.inbox.actions import inbound_events
        from conversa.inbox.actions.assignment import hand_out_to_ready_agent
        from conversa.inbox.actions.delivery import apply_status
        from conversa.inbox.actions.expiry import expire_unanswered
        from conversa.inbox.actions.inbound import receive_inbound
        from conversa.inbox.actions.inbound_bulk import receive_inbound_in_bulk
        from conversa.inbox.actions.menu import route_menu_timeouts
        from conversa.inbox.streams import agent_audience
        from conversa.inbox.sweeps import requeue_media_downloads, requeue_overdue_messages
        from conversa.realtime.stream import register_stream
        from conversa.whatsapp.services import register_item_handler, register_webhook_handlers

        register_stream(name="agent", resolver=agent_audience)
        register_webhook_handlers(inbound=receive_inbound, status=apply_status,
                                  inbound_in_bulk=receive_inbound_in_bulk)
        for item_type, handler in inbound_events.HANDLERS.items():
            register_item_handler(item_type=item_type, handler=handler)
        register_ready_handler(handler=hand_out_to_ready_agent)
        register_sweep(name="menu_timeouts", job=route_menu_timeouts)
        register_sweep(name="messages", job=requeue_overdue_messages)
        register_sweep(name="media_downloads", job=requeue_media_downloads)
        register_sweep(name="expiry", job=expire_unanswered)

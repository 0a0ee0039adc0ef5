from django.apps import AppConfig


class CommunicationsConfig(AppConfig):
    name = "communications"

    def ready(self):
        from crm.health import register_check

        from .services.delivery import outbound_health

        register_check("outbound", outbound_health, required=False)

        from .webhooks import webhook_health

        register_check("webhooks", webhook_health, required=False)

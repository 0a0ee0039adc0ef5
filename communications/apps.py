from django.apps import AppConfig


class CommunicationsConfig(AppConfig):
    name = "communications"

    def ready(self):
        from crm.health import register_check

        from .services.delivery import outbound_health

        register_check("outbound", outbound_health, required=False)

        from .webhooks import webhook_health

        register_check("webhooks", webhook_health, required=False)

        from django.db.models.signals import post_migrate

        from .search_index import reinstall_after_migrate

        post_migrate.connect(reinstall_after_migrate, sender=self)

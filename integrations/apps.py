from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self):
        # Matrix sync lag in /health/ (not required: appservice-only deployments have no sync).
        from crm.health import register_check

        from .matrix.sync import sync_health

        register_check("matrix_sync", sync_health, required=False)

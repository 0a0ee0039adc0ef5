from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self):
        # Plug our providers (API, WhatsApp Cloud / Matrix by mode) into the core's registry.
        from .registry import register_providers

        register_providers()
        from .email.import_job import register as register_email_import

        register_email_import()
        # Matrix sync lag in /health/ (not required: appservice-only deployments have no sync).
        from crm.health import register_check

        from .matrix.sync import sync_health

        register_check("matrix_sync", sync_health, required=False)
        # Celery finds `<app>.tasks` by itself; the Matrix tasks live one level down.
        # Email: beat's mailbox poll.
        from .email import tasks as _email_tasks  # noqa: F401
        from .matrix import tasks as _matrix_tasks  # noqa: F401
        from .whatsapp_cloud import tasks as _whatsapp_tasks  # noqa: F401

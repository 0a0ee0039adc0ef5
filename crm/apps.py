from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"

    def ready(self):
        from . import login  # noqa: F401  sign-ins and failed sign-ins are audit rows


class SwitchboardAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with Switchboard's site (header, title, dashboard)."""

    default = False  # CrmConfig stays this module's default app config

    default_site = "crm.admin_site.SwitchboardAdminSite"

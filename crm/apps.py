from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"


class SwitchboardAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with Switchboard's site (header, title, dashboard)."""

    default = False  # CrmConfig stays this module's default app config

    default_site = "crm.admin_site.SwitchboardAdminSite"

from django.apps import AppConfig


class SavedViewsConfig(AppConfig):
    name = "communications.saved_views"
    label = "saved_views"
    verbose_name = "Saved views"

"""Mounted at /integrations/whatsapp/."""

from django.urls import path

from . import backfill_views, views

urlpatterns = [
    path("connect/", views.connect_page, name="whatsapp-connect"),
    path("connect/status/", views.connect_status, name="whatsapp-connect-status"),
    path("connect/start/", views.connect_start, name="whatsapp-connect-start"),
    path("connect/logout/", views.connect_logout, name="whatsapp-connect-logout"),
    path(
        "rooms/<int:conversation_id>/backfill/",
        backfill_views.start_backfill,
        name="whatsapp-backfill-start",
    ),
    path("backfill/<int:job_id>/", backfill_views.backfill_status, name="whatsapp-backfill-status"),
]

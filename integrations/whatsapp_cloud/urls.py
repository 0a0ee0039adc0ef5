from django.urls import path

from .webhook import whatsapp_webhook

urlpatterns = [
    path("<int:channel_id>/", whatsapp_webhook, name="whatsapp-cloud-webhook"),
]

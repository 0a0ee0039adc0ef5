from django.urls import path

from .views import ApiChannelInboundView

urlpatterns = [
    path(
        "channels/<int:channel_id>/inbound/",
        ApiChannelInboundView.as_view(),
        name="api-channel-inbound",
    ),
]

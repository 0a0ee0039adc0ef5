from django.urls import path

from crm.parallel import parallel_view

from .views import ApiChannelInboundView

urlpatterns = [
    path(
        "channels/<int:channel_id>/inbound/",
        parallel_view(ApiChannelInboundView.as_view()),
        name="api-channel-inbound",
    ),
]

from django.urls import path

from . import api

urlpatterns = [
    path("settings/", api.NotificationSettingsView.as_view(), name="api-notification-settings"),
    path(
        "push-subscriptions/",
        api.PushSubscriptionListView.as_view(),
        name="api-push-subscriptions",
    ),
    path(
        "push-subscriptions/unsubscribe/",
        api.PushUnsubscribeView.as_view(),
        name="api-push-unsubscribe",
    ),
    path(
        "push-subscriptions/<int:subscription_id>/",
        api.PushSubscriptionDetailView.as_view(),
        name="api-push-subscription",
    ),
]

from django.urls import path

from . import outgoing_webhooks, views

urlpatterns = [
    path("conversations/", views.ConversationListView.as_view(), name="api-conversations"),
    path(
        "conversations/<int:conversation_id>/",
        views.ConversationDetailView.as_view(),
        name="api-conversation",
    ),
    path(
        "conversations/<int:conversation_id>/read/",
        views.ConversationReadView.as_view(),
        name="api-conversation-read",
    ),
    path(
        "conversations/<int:conversation_id>/messages/",
        views.MessageListView.as_view(),
        name="api-messages",
    ),
    path(
        "conversations/<int:conversation_id>/templates/",
        views.TemplateListView.as_view(),
        name="api-templates",
    ),
    path("messages/<int:message_id>/retry/", views.MessageRetryView.as_view(), name="api-retry"),
    path(
        "outgoing-webhooks/",
        outgoing_webhooks.SubscriptionListView.as_view(),
        name="api-outgoing-webhooks",
    ),
    path(
        "outgoing-webhooks/<int:subscription_id>/",
        outgoing_webhooks.SubscriptionDetailView.as_view(),
        name="api-outgoing-webhook",
    ),
    path(
        "outgoing-webhooks/<int:subscription_id>/deliveries/",
        outgoing_webhooks.DeliveryListView.as_view(),
        name="api-outgoing-webhook-deliveries",
    ),
    path("contacts/<int:contact_id>/", views.ContactDetailView.as_view(), name="api-contact"),
]

from django.urls import path

from . import views

urlpatterns = [
    path("conversations/", views.ConversationListView.as_view(), name="api-conversations"),
    path(
        "conversations/bulk/",
        views.ConversationBulkView.as_view(),
        name="api-conversations-bulk",
    ),
    path("availability/", views.AvailabilityView.as_view(), name="api-availability"),
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
    path("messages/<int:message_id>/retry/", views.MessageRetryView.as_view(), name="api-retry"),
    path("contacts/<int:contact_id>/", views.ContactDetailView.as_view(), name="api-contact"),
]

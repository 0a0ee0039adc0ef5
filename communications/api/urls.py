from django.urls import path

from . import merge_views, outgoing_webhooks, team_views, views

urlpatterns = [
    path("conversations/", views.ConversationListView.as_view(), name="api-conversations"),
    path(
        "conversations/labels/",
        team_views.BulkConversationLabelsView.as_view(),
        name="api-conversations-labels",
    ),
    path(
        "conversations/<int:conversation_id>/labels/",
        team_views.ConversationLabelsView.as_view(),
        name="api-conversation-labels",
    ),
    path(
        "conversations/<int:conversation_id>/activity/",
        team_views.ActivityListView.as_view(),
        name="api-conversation-activity",
    ),
    path(
        "conversations/<int:conversation_id>/mentionable/",
        team_views.MentionableView.as_view(),
        name="api-conversation-mentionable",
    ),
    path("labels/", team_views.LabelListView.as_view(), name="api-labels"),
    path("labels/<int:label_id>/", team_views.LabelDetailView.as_view(), name="api-label"),
    path("mentions/", team_views.MentionListView.as_view(), name="api-mentions"),
    path("mentions/read/", team_views.MentionReadView.as_view(), name="api-mentions-read"),
    path(
        "canned-responses/",
        team_views.CannedResponseListView.as_view(),
        name="api-canned-responses",
    ),
    path(
        "canned-responses/<int:canned_id>/",
        team_views.CannedResponseDetailView.as_view(),
        name="api-canned-response",
    ),
    path(
        "contacts/<int:contact_id>/labels/",
        team_views.ContactLabelsView.as_view(),
        name="api-contact-labels",
    ),
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
    path(
        "conversations/<int:conversation_id>/templates/",
        views.TemplateListView.as_view(),
        name="api-templates",
    ),
    path("messages/<int:message_id>/retry/", views.MessageRetryView.as_view(), name="api-retry"),
    path("search/", views.SearchView.as_view(), name="api-search"),
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
    path("contacts/", views.ContactListView.as_view(), name="api-contacts"),
    path("contacts/<int:contact_id>/", views.ContactDetailView.as_view(), name="api-contact"),
    path(
        "conversations/<int:conversation_id>/merge/",
        merge_views.ConversationMergeView.as_view(),
        name="api-conversation-merge",
    ),
    path(
        "conversations/<int:conversation_id>/unmerge/",
        merge_views.ConversationUnmergeView.as_view(),
        name="api-conversation-unmerge",
    ),
    path(
        "conversations/<int:conversation_id>/split/",
        merge_views.ConversationSplitView.as_view(),
        name="api-conversation-split",
    ),
    path(
        "conversations/<int:conversation_id>/merge-candidates/",
        merge_views.MergeCandidatesView.as_view(),
        name="api-conversation-merge-candidates",
    ),
    path(
        "contacts/<int:contact_id>/duplicates/",
        merge_views.ContactDuplicatesView.as_view(),
        name="api-contact-duplicates",
    ),
    path(
        "contacts/<int:contact_id>/merge/",
        merge_views.ContactMergeView.as_view(),
        name="api-contact-merge",
    ),
    path(
        "contacts/<int:contact_id>/unmerge/",
        merge_views.ContactUnmergeView.as_view(),
        name="api-contact-unmerge",
    ),
]

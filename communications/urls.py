"""The managers' pages: the inbox shell and the JSON its modules call (communications/pages.py)."""

from django.urls import path

from . import contact_pages, pages

urlpatterns = [
    path("inbox/", pages.inbox, name="inbox"),
    path("contacts/", contact_pages.contacts, name="contacts"),
    path("contacts/<int:contact_id>/", contact_pages.contact_detail, name="contact"),
    path("inbox/counts/", pages.counts, name="inbox-counts"),
    path("inbox/c/<int:conversation_id>/", pages.conversation_open, name="inbox-conversation"),
    path("inbox/c/<int:conversation_id>/upload/", pages.upload, name="inbox-upload"),
    path(
        "inbox/attachments/<int:attachment_id>/retry/",
        pages.retry_download,
        name="inbox-retry-download",
    ),
]

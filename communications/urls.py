"""The managers' pages. The inbox itself arrives with the realtime work (issue: inbox)."""

from django.urls import path
from django.views.generic import TemplateView

urlpatterns = [
    path(
        "inbox/",
        TemplateView.as_view(template_name="communications/inbox_pending.html"),
        name="inbox",
    ),
]

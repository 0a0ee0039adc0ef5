"""Switchboard's admin site: its own header and title, and a dashboard on the index."""

from django.contrib import admin


class SwitchboardAdminSite(admin.AdminSite):
    site_header = "Switchboard administration"
    site_title = "Switchboard admin"
    index_title = "Triage and settings"
    index_template = "admin/switchboard_index.html"

    def index(self, request, extra_context=None):
        from communications.admin_dashboard import dashboard

        # Only for staff allowed to open the lists it links to.
        if request.user.has_perms(
            ["communications.view_conversation", "communications.view_message"]
        ):
            extra_context = {**(extra_context or {}), "dashboard": dashboard()}
        return super().index(request, extra_context)

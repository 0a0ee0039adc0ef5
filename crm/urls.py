from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from communications.views import attachment_media, contact_avatar
from communications.webhook_views import receive_webhook
from integrations.email.api import EmailImportView

from .health import health
from .job_views import JobDetailView
from .login import admin_login_view, login_view

handler404 = "crm.errors.not_found"

urlpatterns = [
    path("", RedirectView.as_view(url="/inbox/", permanent=False)),
    path("health/", health, name="health"),
    # Before admin.site.urls: the admin's sign-in gets the same brake as ours.
    path("admin/login/", admin_login_view),
    path("admin/", admin.site.urls),
    path("accounts/login/", login_view, name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The API channel's inbound endpoint belongs to its provider, under the same public path.
    path("api/v1/jobs/<int:job_id>/", JobDetailView.as_view(), name="api-job"),
    path(
        "api/v1/channels/<int:channel_id>/email-import/",
        EmailImportView.as_view(),
        name="api-email-import",
    ),
    path("api/v1/notifications/", include("communications.notifications.api_urls")),
    path("api/v1/views/", include("communications.saved_views.api_urls")),
    path("api/v1/", include("integrations.api.urls")),
    path("api/v1/", include("communications.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI and ReDoc from our own static files (drf-spectacular-sidecar): they render
    # offline, and the split view serves its init script as a file (the CSP refuses inline
    # scripts). Both style their widgets inline at run time, so their pages allow that.
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(
                url_name="api-schema", template_name="api/swagger_ui.html"
            )
        ),
        name="api-docs",
    ),
    path(
        "api/redoc/",
        csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["blob:"]})(
            SpectacularRedocView.as_view(url_name="api-schema", template_name="api/redoc.html")
        ),
        name="api-redoc",
    ),
    path("media/a/<str:token>/", attachment_media, name="attachment-media"),
    path(
        "media/avatars/<int:contact_id>/<str:name>",
        contact_avatar,
        name="contact-avatar",
    ),
    # WhatsApp through Matrix: the appservice Synapse pushes to, and the Connect WhatsApp page.
    path("matrix/appservice/", include("integrations.matrix.urls")),
    path("integrations/whatsapp/", include("integrations.matrix.connect_urls")),
    path("webhooks/<slug:source>/<int:channel_id>/", receive_webhook, name="webhook"),
    path("", include("reports.urls")),
    path("", include("communications.notifications.urls")),
    path("", include("communications.urls")),
]

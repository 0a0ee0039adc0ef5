from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from communications.views import attachment_media

from .health import health
from .login import RateLimitedLoginView

urlpatterns = [
    path("", RedirectView.as_view(url="/inbox/", permanent=False)),
    path("health/", health, name="health"),
    path("admin/", admin.site.urls),
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include("communications.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI and ReDoc from our own static files (drf-spectacular-sidecar): they render
    # offline, and the split view serves its init script as a file (no inline script).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="api/swagger_ui.html"
        ),
        name="api-docs",
    ),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="api-schema", template_name="api/redoc.html"),
        name="api-redoc",
    ),
    path("media/a/<str:token>/", attachment_media, name="attachment-media"),
    # WhatsApp through Matrix: the appservice Synapse pushes to, and the Connect WhatsApp page.
    path("matrix/appservice/", include("integrations.matrix.urls")),
    path("integrations/whatsapp/", include("integrations.matrix.connect_urls")),
    path("webhooks/whatsapp/", include("integrations.whatsapp_cloud.urls")),
    path("", include("communications.urls")),
]

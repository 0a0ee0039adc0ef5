"""Admin registrations of the integrations, one module per provider."""

from .email import admin as email_admin  # noqa: F401
from .matrix import admin as matrix_admin  # noqa: F401
from .whatsapp_cloud import admin as whatsapp_cloud_admin  # noqa: F401, E402

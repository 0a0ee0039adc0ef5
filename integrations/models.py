"""Models of the integrations app live with their provider; Django finds them here."""

from .email.models import EmailAccount, MailboxState  # noqa: F401, E402
from .matrix.models import (  # noqa: F401
    BackfillJob,
    MatrixConnection,
    MatrixRoom,
    MatrixSettings,
)
from .whatsapp_cloud.models import WhatsAppTemplate  # noqa: F401, E402

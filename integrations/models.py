"""Models of the integrations app live with their provider; Django finds them here."""

from .matrix.models import (  # noqa: F401
    BackfillJob,
    MatrixConnection,
    MatrixRoom,
    MatrixSettings,
    ProcessedTransaction,
)

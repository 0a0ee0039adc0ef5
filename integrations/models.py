"""Models of the integrations app live with their provider; Django finds them here."""

from .matrix.models import (  # noqa: F401
    MatrixConnection,
    MatrixRoom,
    MatrixSettings,
    ProcessedTransaction,
)

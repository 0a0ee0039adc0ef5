"""The provider interface now lives in the core (`communications.providers`); this module
re-exports it so integrations' own code keeps one short import path."""

from communications.providers import (  # noqa: F401
    DeliveryError,
    PermanentDeliveryError,
    Provider,
    SendResult,
    TemporaryDeliveryError,
)

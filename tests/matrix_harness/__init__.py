"""Test harness: a real Synapse homeserver plus an emulator of the mautrix-whatsapp bridge.

No Django here. See synapse.py (SynapseServer), bridge_emulator.py (BridgeEmulator) and
fixtures.py (pytest fixtures ``matrix_stack`` / ``crm_user``, ``start_stack()``, ``NioSyncer``).
"""

from .bridge_emulator import BridgeEmulator, MatrixRequestError
from .synapse import SynapseServer, ensure_synapse_installed

__all__ = ["BridgeEmulator", "MatrixRequestError", "SynapseServer", "ensure_synapse_installed"]

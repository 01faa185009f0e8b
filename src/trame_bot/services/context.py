"""What every service needs: the database, the clock and, where tokens are stored, the vault
that seals them."""

from __future__ import annotations

from dataclasses import dataclass

from trame_bot.clock import Clock
from trame_bot.store.database import Database
from trame_bot.vault import Vault


@dataclass(frozen=True)
class Context:
    db: Database
    clock: Clock
    vault: Vault | None = None
    """Set when `TRAME_ENCRYPTION_KEY` is (distributed mode); None in one-workspace mode."""
    distributed: bool = False
    """Slack by OAuth installations: each workspace's Slack messages go through its own team's
    installation and wait (held) while it is missing or disconnected."""

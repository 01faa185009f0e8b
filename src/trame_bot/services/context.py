"""What every service needs: the database and the clock."""

from __future__ import annotations

from dataclasses import dataclass

from trame_bot.clock import Clock
from trame_bot.store.database import Database


@dataclass(frozen=True)
class Context:
    db: Database
    clock: Clock

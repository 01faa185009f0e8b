"""The web server's heap and Python's cyclic garbage collector.

Nearly everything a started server holds lives as long as it does: modules, the Bolt app,
SQLAlchemy's mappers, pools, pydantic's validators, over 100,000 objects. A full collection
walks every one of them with the event loop stopped: measured under load on the bench
machine, each took 74–84 ms, and every request in flight waited that long. `gc.freeze` moves
what exists into a generation the collector never walks, so a later full collection walks only
what was made since: 3–27 ms there, and the slowest `/trame status` acks at 50 concurrent took
half as long on SQLite (rows 1c and 1d in `bench/`, see docs/performance.md)."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect what startup left as garbage, then freeze the rest. Once, when the server has
    started and before its first request: a frozen object is freed when nothing refers to it
    any more, but a cycle of frozen objects never is, so what is frozen must be meant to live
    as long as the process."""
    gc.collect()
    gc.freeze()

"""Settings of the SQLite library itself, for the whole process (not of one connection).

SQLite counts the memory it allocates (`SQLITE_CONFIG_MEMSTATUS`, on by default) under one
mutex for the whole process: every allocation of every connection takes it. Debian's SQLite
(the one Python links here) is also built without lookaside memory (`SQLITE_OMIT_LOOKASIDE`),
so every short-lived value of every row is an allocation: two connections working at once in
two threads spend their time handing that mutex back and forth in the kernel. Measured on a
two-core machine over a million audit events, the export's statement in two threads took
4.0–4.2 s (7–8 s of CPU, a third of it in the kernel) against 2.6–3.8 s in one; with the
counting off, 1.6 s in two threads (3 s of CPU). trame-bot never reads those counts.

Python's `sqlite3` module offers no way to change a library setting, and the library takes
settings only before it starts (`sqlite3_config` before `sqlite3_initialize`, which the module
calls on import): so it is stopped, set and started again, through `ctypes`, once per process
and only while it holds no memory at all, which means no connection is open."""

from __future__ import annotations

import ctypes
import logging
import sys
import threading

log = logging.getLogger(__name__)

_SQLITE_OK = 0
_SQLITE_CONFIG_MEMSTATUS = 9
_lock = threading.Lock()
_tried = False


def stop_counting_memory() -> bool:
    """Turn SQLite's memory statistics off for this process, before its first connection:
    whether they are off now because of this call. Does nothing once a connection is open
    (stopping the library under an open connection is not allowed), nor a second time, nor
    outside Linux (`sqlite3_config` takes variable arguments, which `ctypes` passes as fixed
    ones: the same on Linux's x86-64 and arm64 calling conventions, not on every other)."""
    global _tried
    with _lock:
        if _tried or not sys.platform.startswith("linux"):
            return False
        _tried = True
        try:
            import _sqlite3

            library = ctypes.CDLL(_sqlite3.__file__)  # its symbols, and its SQLite's
            used = library.sqlite3_memory_used
            used.restype = ctypes.c_int64
        except (ImportError, OSError, AttributeError) as exc:
            log.debug("SQLite's memory statistics left on: %s", type(exc).__name__)
            return False
        if used() != 0:  # something holds SQLite memory: a connection may be open
            log.debug("SQLite's memory statistics left on: the library is in use")
            return False
        stopped: bool = library.sqlite3_shutdown() == _SQLITE_OK
        configured: bool = stopped and (
            library.sqlite3_config(_SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0)) == _SQLITE_OK
        )
        started: bool = library.sqlite3_initialize() == _SQLITE_OK
        log.debug("SQLite's memory statistics off: %s (restarted: %s)", configured, started)
        return configured and started

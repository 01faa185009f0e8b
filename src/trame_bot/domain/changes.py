"""What changed between two snapshots of a definition (for idempotent applies and the audit)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """Every field when there was nothing before; otherwise those whose value differs."""
    if before is None:
        return sorted(after)
    return sorted(key for key in after if after[key] != before.get(key))

"""A workflow's plan (its ordered steps) and the fingerprint an approval binds to."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trame_bot.domain.enums import Access


@dataclass(frozen=True)
class Step:
    name: str
    tool: str
    connector: str
    access: Access
    action: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tool": self.tool,
            "connector": self.connector,
            "action": self.action,
            "access": self.access.value,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Step:
        return cls(
            name=str(raw["name"]),
            tool=str(raw["tool"]),
            connector=str(raw["connector"]),
            access=Access(raw["access"]),
            action=None if raw.get("action") is None else str(raw["action"]),
        )


def steps_from_dicts(raw: Iterable[Mapping[str, Any]]) -> tuple[Step, ...]:
    return tuple(Step.from_dict(item) for item in raw)


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""`json.dumps` with these options, built once: `dumps` builds an encoder per call."""


def canonical_json(value: Any) -> str:
    """One spelling for equal values: sorted keys, no insignificant whitespace, NFC text."""
    try:
        text: str | None = _CANONICAL.encode(value)
    except TypeError:  # a Mapping that is not a dict: only the walk below turns it into one
        text = None
    # NFC leaves ASCII as it is, so all-ASCII output is already canonical: the walk that
    # normalises every string is only for the rest (every audit event passes here).
    if text is not None and text.isascii():
        return text
    return _CANONICAL.encode(_normalise(value))


def _normalise(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, Mapping):
        return {_normalise(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return value


def fingerprint(steps: Sequence[Step], version: int) -> str:
    """SHA-256 of the canonical plan: ordered steps (tool, connector, action, access) + version.

    Step names are left out on purpose: renaming a step changes nothing that runs. Surrounding
    whitespace is ignored, so re-saving a document with other formatting keeps the approval.
    """
    plan = {
        "version": version,
        "steps": [
            {
                "tool": step.tool.strip(),
                "connector": step.connector.strip(),
                "action": None if step.action is None else step.action.strip(),
                "access": step.access.value,
            }
            for step in steps
        ],
    }
    return hashlib.sha256(canonical_json(plan).encode("utf-8")).hexdigest()


def connectors_of(steps: Iterable[Step]) -> list[str]:
    """Connector keys in order of first use."""
    return list(dict.fromkeys(step.connector for step in steps))

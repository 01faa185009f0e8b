"""Sensitive values: spotting them in free-form prompts and masking required details."""

from __future__ import annotations

import re
from collections.abc import Mapping

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
# A "long id": a UUID, nine or more digits (account numbers, phone numbers), or a token of
# sixteen or more letters and digits run together, holding both (API keys, record ids).
# Hyphenated words ("q3-2026-report") are ordinary text, not ids.
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_DIGITS = re.compile(r"(?<!\d)\d{9,}(?!\d)")
_TOKEN = re.compile(r"\b(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{16,}\b")

MASK = "••••"


def prompt_warnings(prompt: str) -> list[str]:
    """Why the prompt should move values into required details; empty when it is clean."""
    warnings = []
    if _EMAIL.search(prompt):
        warnings.append("the prompt contains an email address")
    if _URL.search(prompt):
        warnings.append("the prompt contains a URL")
    without_urls_and_emails = _URL.sub(" ", _EMAIL.sub(" ", prompt))
    if any(p.search(without_urls_and_emails) for p in (_UUID, _DIGITS, _TOKEN)):
        warnings.append("the prompt contains a long id")
    return warnings


def mask(value: str) -> str:
    """Enough to recognise a value, not enough to use it; the length is not revealed."""
    value = value.strip()
    if len(value) <= 8:
        return MASK
    return f"{value[:2]}{MASK}{value[-2:]}"


def masked_details(details: Mapping[str, object]) -> dict[str, str]:
    return {str(key): mask(str(value)) for key, value in details.items()}

"""Spotting sensitive values in prompts, and masking required details."""

from __future__ import annotations

import string

import pytest

from trame_bot.domain.sensitive import MASK, mask, masked_details, prompt_warnings

KINDS = {"email address": "email", "URL": "url", "long id": "id"}


def _kinds(prompt: str) -> set[str]:
    """The warnings as short labels, so the table below reads at a glance."""
    found = set()
    for warning in prompt_warnings(prompt):
        (kind,) = [label for phrase, label in KINDS.items() if phrase in warning]
        found.add(kind)
    return found


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Summarise yesterday's closed deals for the weekly report", set()),
        ("", set()),
        ("Internationalization counterrevolutionaries", set()),  # long words, no digits
        ("Post the Q3 numbers on 2026-11-01 at 09:30, top 10 only", set()),
        ("Call 12345678 if it fails", set()),  # eight digits is not a long id
        ("Try abc123def456ghi", set()),  # fifteen characters is not a long id
        ("Attach the Q3-2026-quarterly-report and step_one_and_step_2", set()),  # hyphenated words
        ("Bill acct123456789 today", {"id"}),  # nine digits attached to letters
        ("Send it to jane.doe@client.example", {"email"}),
        ("Send it to reports+2024q3abcdefgh@client.example", {"email"}),
        ("See https://intranet.client.example/reports?id=42", {"url"}),
        ("See HTTP://intranet.client.example", {"url"}),
        ("See www.client.example", {"url"}),
        ("Open https://x.example/r/550e8400-e29b-41d4-a716-446655440000", {"url"}),
        ("Account 123456789", {"id"}),
        ("Card 4111111111111111", {"id"}),
        ("Record 550e8400-e29b-41d4-a716-446655440000", {"id"}),
        ("Record 550E8400-E29B-41D4-A716-446655440000", {"id"}),
        ("Use the key abc123def456ghij", {"id"}),
        ("Use the key 0OPPORTUNITY7XYZ", {"id"}),
        ("Mail bob@client.example the link https://x.example/a", {"email", "url"}),
        ("bob@client.example, www.x.example, account 987654321", {"email", "url", "id"}),
    ],
)
def test_prompt_warnings(prompt: str, expected: set[str]) -> None:
    assert _kinds(prompt) == expected


def test_each_warning_is_given_once() -> None:
    prompt = "a@b.example c@d.example 123456789 987654321 https://a.example https://b.example"
    assert len(prompt_warnings(prompt)) == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", MASK),
        ("abc", MASK),
        ("12345678", MASK),
        ("  12345678  ", MASK),  # surrounding whitespace does not count
        ("123456789", f"12{MASK}89"),
        ("jane.doe@client.example", f"ja{MASK}le"),
    ],
)
def test_mask(value: str, expected: str) -> None:
    assert mask(value) == expected


@pytest.mark.parametrize("length", range(1, 41))
def test_mask_never_reveals_the_value(length: int) -> None:
    value = (string.ascii_letters * 2)[:length]
    assert value not in mask(value)


def test_mask_does_not_reveal_the_length() -> None:
    short = {mask("x" * n) for n in range(1, 9)}
    long = {len(mask("x" * n)) for n in range(9, 200)}
    assert short == {MASK}
    assert len(long) == 1


def test_masked_details() -> None:
    details = {"email": "jane.doe@client.example", "account": 123456789012, "pin": "1234"}
    assert masked_details(details) == {
        "email": f"ja{MASK}le",
        "account": f"12{MASK}12",
        "pin": MASK,
    }

"""`json_text.loads` gives what `json.loads` gives, value for value and type for type, faster."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trame_bot.json_text import loads

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def _same(ours: Any, theirs: Any) -> bool:
    """Equal, and of the same types all the way down (1 == 1.0 == True would hide a change)."""
    if type(ours) is not type(theirs):
        return False
    if isinstance(ours, dict):
        return list(ours) == list(theirs) and all(_same(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list):
        return len(ours) == len(theirs) and all(map(_same, ours, theirs))
    if isinstance(ours, float) and math.isnan(ours):
        return math.isnan(theirs)
    return bool(ours == theirs)


@given(_values, st.booleans())
def test_any_json_reads_as_the_standard_library_reads_it(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert _same(loads(text), json.loads(text))
    assert _same(loads(text.encode()), json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        # integers of any size (orjson would read these as floats)
        "[100000000000000000000]",
        "[18446744073709551616]",
        "[-9223372036854775809]",
        '{"amount": 123456789012345678901234567890}',
        # msgspec refuses these; `json` reads them
        "NaN",
        "[Infinity, -Infinity]",
        "[1e400]",
        '"\\ud800"',
        "[18446744073709551615, -9223372036854775808, 999999999999999999]",
        '{"a": 1, "a": 2}',
    ],
)
def test_edges_read_as_json_reads_them(text: str) -> None:
    assert _same(loads(text), json.loads(text))


@pytest.mark.parametrize("text", ["", "{", "[1,]", "{'a': 1}", "\x00"])
def test_what_is_not_json_is_refused_as_json_refuses_it(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        loads(text)

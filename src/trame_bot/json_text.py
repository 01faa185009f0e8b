"""Reading JSON text fast, with the standard library's answers.

Every card, status glance and decision reads JSON: the database's JSON columns, the aggregates
`store.functions.json_rows` builds, Slack's payloads. `json.loads` took about 30 µs of a
`/trame status <workflow>` glance's 190. msgspec reads the same text four to five times
faster and gives the same values (integers of any size included, where orjson would turn one
beyond 64 bits into a float). What msgspec refuses and `json` accepts (NaN, Infinity, numbers
beyond a float's range, lone surrogates) is read by `json`, so nothing that read before fails
now; what neither reads raises `json.JSONDecodeError`, as before.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

_decode = msgspec.json.Decoder().decode


def loads(text: str | bytes) -> Any:
    """`json.loads(text)`, through msgspec."""
    try:
        return _decode(text)
    except msgspec.DecodeError:
        return json.loads(text)

"""What the server checks about a request's strings, said in JSON Schema for the OpenAPI
document, so that a request the document calls valid is one the server accepts.

Every pattern is written for both regex dialects a client may use (ECMAScript, Python):
explicit character classes, no `\\s`, no lookarounds, no flags."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from trame_bot.domain.values import check_key
from trame_bot.services.audit import ENTITY_TYPES

CONTROL = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f"
"""`domain.values.CONTROL`: the characters `storable` refuses (tab, LF and CR are fine)."""
SPACE = r"\t\n\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""Unicode White_Space, which pydantic's `strip_whitespace` and `str.strip` remove, but for
VT and FF: they are control characters, refused wherever they stand."""

NO_CONTROL = f"^[^{CONTROL}]*$"
KEY_IN_PATH = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
KEY = f"^[{SPACE}]*[A-Za-z0-9][A-Za-z0-9_-]{{0,63}}[{SPACE}]*$"
"""`check_key`, after pydantic strips and lowercases: the length is the stripped one."""


def stripped(min_length: int, max_length: int | None) -> str:
    """A string pydantic strips before it checks the length: spaces around, then
    `min_length`–`max_length` characters that start and end with something else."""
    edge, inner = f"[^{CONTROL}{SPACE}]", f"[^{CONTROL}]"
    if max_length is None:
        body = f"{edge}({inner}*{edge})?"
    elif max_length == 1:
        body = edge
    else:
        body = f"{edge}({inner}{{0,{max_length - 2}}}{edge})?"
    if min_length == 0:
        body = f"({body})?"
    return f"^[{SPACE}]*{body}[{SPACE}]*$"


ENTITY = f"^$|^[{SPACE}]*({'|'.join(ENTITY_TYPES)}):[^{CONTROL}]*[^{CONTROL}{SPACE}][^{CONTROL}]*$"
"""`audit.parse_entity` on the trimmed value: a known type, a colon, an id that is not blank;
empty means every entity."""

YEAR = "(000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9])"
"""0002–9998: at the ends of the calendar an offset moves the time out of it once in UTC,
which Python's datetime cannot hold."""
DATE = f"^{YEAR}-[0-9]{{2}}-[0-9]{{2}}$"
DATE_TIME = (
    f"^{YEAR}-[0-9]{{2}}-[0-9]{{2}}[Tt][0-9]{{2}}:[0-9]{{2}}:[0-5][0-9]([.][0-9]{{1,9}})?"
    "(Z|[+-][0-9]{2}:[0-9]{2})$"
)
"""RFC 3339 as Python parses it: no leap second, an upper-case Z."""
AGE = (
    "^ *([1-9][0-9]{0,7} *[sS]|[1-9][0-9]{0,5} *[mM]|[1-9][0-9]{0,3} *[hH]"
    "|[1-9][0-9]{0,2} *[dD]|[1-9][0-9]? *[wW]) *$"
)
"""`parse_duration` ages up to ten years, written with at most as many digits as always fit."""


def moment(description: str) -> dict[str, Any]:
    """A `since`/`until` query value as `parse_moment` reads it; empty means no bound."""
    return {
        "type": "string",
        "description": description,
        "anyOf": [
            {"maxLength": 0},
            {"pattern": AGE},
            {"format": "date", "pattern": DATE},
            {"format": "date-time", "pattern": DATE_TIME},
        ],
    }


class RequestSchema(GenerateJsonSchema):
    """pydantic's JSON Schema, plus what `documents.parse` checks before pydantic does (no
    control characters anywhere) and what stripping and `check_key` mean for a string."""

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)
        if self.mode != "validation":
            return json_schema
        if "pattern" in json_schema:
            # The model's own pattern stays; the control rule is added beside it.
            json_schema["allOf"] = [{"pattern": NO_CONTROL}]
        elif schema.get("strip_whitespace"):
            # The lengths count what is left once stripped: the pattern says them.
            json_schema.pop("minLength", None)
            json_schema.pop("maxLength", None)
            json_schema["pattern"] = stripped(schema.get("min_length", 0), schema.get("max_length"))
        else:
            json_schema["pattern"] = NO_CONTROL
        return json_schema

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        json_schema = super().dict_schema(schema)
        # pydantic says a patterned key type as `patternProperties`, which lets keys that do
        # not match through with any value; the server refuses those keys, so say it so.
        patterned = json_schema.pop("patternProperties", None)
        if patterned:
            ((pattern, values),) = patterned.items()
            json_schema["propertyNames"] = {
                **json_schema.get("propertyNames", {}),
                "pattern": pattern,
            }
            json_schema["additionalProperties"] = values
        return json_schema

    def datetime_schema(self, schema: core_schema.DatetimeSchema) -> JsonSchemaValue:
        json_schema = super().datetime_schema(schema)
        if self.mode == "validation":
            json_schema["pattern"] = DATE_TIME
        return json_schema

    def function_after_schema(
        self, schema: core_schema.AfterValidatorFunctionSchema
    ) -> JsonSchemaValue:
        json_schema = super().function_after_schema(schema)
        if self.mode == "validation" and schema["function"].get("function") is check_key:
            json_schema.pop("minLength", None)
            json_schema.pop("maxLength", None)
            json_schema["pattern"] = KEY
        return json_schema

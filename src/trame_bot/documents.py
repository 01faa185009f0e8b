"""The documents the API and the CLI take (README, Documents), validated by pydantic.

The same models generate the API's OpenAPI schemas, so what the CLI accepts and what the API
documents can never drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StringConstraints,
    ValidationError,
    field_validator,
)

from trame_bot.domain.enums import Access, Source, Status, TriggerKind
from trame_bot.domain.values import check_key, storable
from trame_bot.errors import InvalidInput

Key = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=64),
    AfterValidator(check_key),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=3000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
UserId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
SlackUserId = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[UW][A-Z0-9]{2,31}$")
]
DetailValue = str | int | FiniteFloat | bool
"""JSON's own values: 1e400 would become infinity, which JSON cannot give back."""

MAX_STEPS = 1000


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepDoc(Document):
    name: Text
    tool: ShortText
    connector: Key
    action: ShortText | None = None
    access: Access = Access.READ


class TriggerDoc(Document):
    key: Key
    kind: TriggerKind
    enabled: bool = True


class WorkflowDoc(Document):
    key: Key
    name: ShortText
    status: Status = Field(
        default=Status.DRAFT, description="Used when the workflow is created: draft or pilot."
    )
    production: bool = False
    required_approvals: int = Field(default=1, ge=1, le=10)
    reviewers: list[SlackUserId] = Field(default_factory=list, max_length=50)
    prompt: str = Field(default="", max_length=20_000)
    required_details: dict[ShortText, DetailValue] = Field(default_factory=dict, max_length=100)
    steps: list[StepDoc] = Field(min_length=1, max_length=MAX_STEPS)
    triggers: list[TriggerDoc] = Field(default_factory=list, max_length=50)

    @field_validator("triggers")
    @classmethod
    def _unique_triggers(cls, triggers: list[TriggerDoc]) -> list[TriggerDoc]:
        keys = [t.key for t in triggers]
        if len(keys) != len(set(keys)):
            raise ValueError("trigger keys must be unique")
        return triggers

    @field_validator("reviewers")
    @classmethod
    def _unique_reviewers(cls, reviewers: list[str]) -> list[str]:
        return list(dict.fromkeys(reviewers))


class ConnectorDoc(Document):
    key: Key
    toolkit: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
    ] = Field(description="At most 100 characters, as stored.")
    account: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    scopes: list[ShortText] = Field(default_factory=list, max_length=100)
    health_url: (
        Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)] | None
    ) = None
    expires_at: datetime | None = None
    actor: UserId | None = Field(
        default=None, description="Who connected it (regulated workspaces)."
    )

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-12-01T00:00:00Z")
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("the time is outside the calendar once in UTC") from None


class RunRequestDoc(Document):
    source: Source = Source.MANUAL
    trigger: Key | None = None
    requested_by: UserId | None = None
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    steps: list[StepDoc] | None = Field(default=None, min_length=1, max_length=MAX_STEPS)
    details: dict[ShortText, DetailValue] = Field(default_factory=dict, max_length=100)


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], raw: Any) -> M:
    """Validate `raw` into `model`, or raise InvalidInput naming each bad field."""
    where = unstorable(raw)
    if where is not None:
        raise InvalidInput(
            f"{where or 'the document'} holds a control character (NUL, escape…) or a broken "
            "Unicode character: remove it",
            {where or "document": "no control characters"},
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        fields = {
            ".".join(str(p) for p in error["loc"]) or "document": error["msg"]
            for error in exc.errors(include_url=False)
        }
        first = next(iter(fields.items()))
        raise InvalidInput(
            f"invalid {model.__name__.removesuffix('Doc').lower()}: {first[0]}: {first[1]}", fields
        ) from None


def load_documents(text: str) -> list[Any]:
    """A YAML or JSON file holding one document, a list of them, or several `---` documents."""
    try:
        loaded = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise InvalidInput(f"the file is not valid YAML or JSON{line}") from None
    documents: list[Any] = []
    for doc in loaded:
        documents.extend(doc if isinstance(doc, list) else [doc])
    if not documents:
        raise InvalidInput("the file holds no document")
    return documents


def unstorable(value: Any, path: str = "") -> str | None:
    """The path of the first string holding a control character (tabs and newlines are fine)
    or a lone surrogate (not UTF-8): PostgreSQL cannot store a NUL, the audit chain cannot
    hash a surrogate, and none of them belongs in a workflow."""
    if isinstance(value, str):
        return None if storable(value) else path
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        here = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and not storable(key):
            return here
        found = unstorable(item, here)
        if found is not None:
            return found
    return None

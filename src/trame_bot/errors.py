"""The one error tree of trame-bot; each transport translates it at its edge.

    TrameError                 message is safe to show to the person who caused it
    ├── ConfigError            bad configuration; the program stops at start
    ├── Unauthenticated        no API key, or one unknown or revoked
    ├── NotFound               unknown workspace, workflow, connector, run, member, key
    ├── Forbidden              the actor's role does not allow the action
    ├── InvalidTransition      the workflow cannot go from its status to the one asked
    ├── Conflict               the state changed under the request (already decided, key reuse)
    ├── InvalidInput           a document or argument is malformed; `fields` names the culprits
    └── Unavailable            a dependency (database, Slack) is down; try again later
        └── SchemaNotReady     the database's schema is missing or outdated: an operator
                               must run `trame-bot db upgrade`; trying again will not help

Anything else that escapes is a bug: transports log it with a reference id and show only that id.
"""

from __future__ import annotations

from collections.abc import Mapping


class TrameError(Exception):
    """Base of every error whose message may be shown to a user as it is."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(TrameError):
    code = "config_error"


class Unauthenticated(TrameError):
    code = "unauthorized"

    def __init__(self) -> None:
        super().__init__("send a valid workspace API key: Authorization: Bearer <key>")


class NotFound(TrameError):
    code = "not_found"


class ChannelNotBound(NotFound):
    """A Slack channel that no workspace is bound to: say who can bind it, and how."""

    def __init__(self, channel: str) -> None:
        super().__init__(
            "This channel is not connected to a trame-bot workspace. An operator connects it "
            f"with `trame-bot workspace set <workspace> --approvals-channel {channel}` "
            "(or `--ops-channel`)."
        )


class Forbidden(TrameError):
    code = "forbidden"


class InvalidTransition(TrameError):
    code = "invalid_transition"


class Conflict(TrameError):
    code = "conflict"


class InvalidInput(TrameError):
    code = "invalid_input"

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields: dict[str, str] = dict(fields or {})


class Unavailable(TrameError):
    code = "unavailable"


class SchemaNotReady(Unavailable):
    """The service cannot work (as Unavailable: HTTP 503), but waiting will not fix it: the
    command line treats it as configuration (exit 2) and servers refuse to start with it."""

    code = "schema_not_ready"

"""Block Kit as Slack checks it: the published limits of blocks, elements, modals and Home tabs,
then slack_sdk's own models as a second net. Used by the fake Web API and by builder tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, BlockElement

Json = dict[str, Any]

MAX_MESSAGE_TEXT = 40_000
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_BLOCK_TEXT_TOTAL = 13_000  # undocumented, observed: msg_blocks_too_long
MAX_VIEW_BYTES = 250_000


def _names(names: str) -> frozenset[str]:
    return frozenset(names.split())


_TEXT_KEYS = _names("type text emoji verbatim")
_STYLES = ("primary", "danger")

# The properties Slack accepts: any other is "invalid additional property".
_BLOCK_KEYS: dict[str, frozenset[str]] = {
    "section": _names("type block_id text fields accessory expand"),
    "header": _names("type block_id text"),
    "context": _names("type block_id elements"),
    "divider": _names("type block_id"),
    "actions": _names("type block_id elements"),
    "input": _names("type block_id label element dispatch_action hint optional"),
    "image": _names("type block_id image_url slack_file alt_text title"),
    "rich_text": _names("type block_id elements"),
}
# Elements checked key by key; the other known elements only get the common checks.
_ELEMENT_KEYS: dict[str, frozenset[str]] = {
    "button": _names("type text action_id url value style confirm accessibility_label"),
    "static_select": _names(
        "type action_id options option_groups initial_option confirm focus_on_load placeholder"
    ),
    "multi_static_select": _names(
        "type action_id options option_groups initial_options confirm max_selected_items"
        " focus_on_load placeholder"
    ),
    "plain_text_input": _names(
        "type action_id initial_value multiline min_length max_length dispatch_action_config"
        " focus_on_load placeholder"
    ),
    "radio_buttons": _names("type action_id options initial_option confirm focus_on_load"),
    "checkboxes": _names("type action_id options initial_options confirm focus_on_load"),
    "overflow": _names("type action_id options confirm"),
    "image": _names("type image_url slack_file alt_text"),
}
_MODAL_KEYS = _names(
    "type title blocks close submit private_metadata callback_id clear_on_close"
    " notify_on_close external_id submit_disabled"
)
_HOME_KEYS = _names("type blocks private_metadata callback_id external_id")

# Where each element may appear.
_SELECTS = frozenset(
    f"{multi}{kind}_select"
    for multi in ("", "multi_")
    for kind in ("static", "external", "users", "conversations", "channels")
)
_PICKERS = _names("datepicker timepicker datetimepicker")
_TEXT_INPUTS = _names(
    "plain_text_input email_text_input number_input url_text_input rich_text_input"
)
_ACCESSORY_TYPES = (
    _names("button overflow image checkboxes radio_buttons workflow_button") | _SELECTS | _PICKERS
)
_ACTIONS_TYPES = (
    _names("button overflow checkboxes radio_buttons workflow_button")
    | _SELECTS
    | _PICKERS
    | _TEXT_INPUTS
)
_INPUT_TYPES = _names("checkboxes radio_buttons file_input") | _SELECTS | _PICKERS | _TEXT_INPUTS
_RICH_TEXT_PARTS = _names("rich_text_section rich_text_list rich_text_preformatted rich_text_quote")


class _Checker:
    """Collects Slack-style errors (``problem [json-pointer:/blocks/0/text]``) for one surface.

    One checker per message or view: ``block_id`` and ``action_id`` must be unique within it.
    """

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._block_ids: set[str] = set()
        self._action_ids: set[str] = set()

    def fail(self, path: str, problem: str) -> None:
        self.errors.append(f"{problem} [json-pointer:{path}]")

    # -- primitives

    def keys(self, obj: Json, path: str, allowed: frozenset[str]) -> None:
        for key in obj:
            if key not in allowed:
                self.fail(f"{path}/{key}", "invalid additional property")

    def string(
        self,
        obj: Json,
        key: str,
        path: str,
        *,
        max_len: int,
        min_len: int = 0,
        required: bool = False,
    ) -> str | None:
        value = obj.get(key)
        where = f"{path}/{key}"
        if value is None:
            if required:
                self.fail(where, "missing required field")
            return None
        if not isinstance(value, str):
            self.fail(where, "must be a string")
            return None
        if len(value) > max_len:
            self.fail(where, f"must be less than {max_len + 1} characters")
        if len(value) < min_len:
            self.fail(where, f"must be more than {min_len - 1} characters")
        return value

    def integer(self, obj: Json, key: str, path: str, *, low: int, high: int) -> int | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{path}/{key}", "must be an integer")
            return None
        if not low <= value <= high:
            self.fail(f"{path}/{key}", f"must be between {low} and {high}")
            return None
        return value

    def boolean(self, obj: Json, *keys: str, path: str) -> None:
        for key in keys:
            if key in obj and not isinstance(obj[key], bool):
                self.fail(f"{path}/{key}", "must be a boolean")

    def array(
        self,
        obj: Json,
        key: str,
        path: str,
        *,
        min_items: int,
        max_items: int,
        required: bool = True,
    ) -> list[Any]:
        value = obj.get(key)
        where = f"{path}/{key}"
        if value is None:
            if required:
                self.fail(where, "missing required field")
            return []
        if not isinstance(value, list):
            self.fail(where, "must be an array")
            return []
        if len(value) < min_items:
            self.fail(where, f"must provide at least {min_items} items")
        if len(value) > max_items:
            self.fail(where, f"must provide no more than {max_items} items")
        return value

    def is_object(self, value: Any, path: str) -> bool:
        if isinstance(value, dict):
            return True
        self.fail(path, "must be an object")
        return False

    def text(
        self,
        obj: Json,
        key: str,
        path: str,
        *,
        max_len: int,
        plain_only: bool = False,
        required: bool = False,
    ) -> None:
        value = obj.get(key)
        if value is None:
            if required:
                self.fail(f"{path}/{key}", "missing required field")
            return
        self.text_object(value, f"{path}/{key}", max_len=max_len, plain_only=plain_only)

    def text_object(self, value: Any, path: str, *, max_len: int, plain_only: bool) -> None:
        if not self.is_object(value, path):
            return
        self.keys(value, path, _TEXT_KEYS)
        kind = value.get("type")
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if kind not in allowed:
            self.fail(f"{path}/type", f"must be one of {', '.join(allowed)}")
        if kind == "mrkdwn" and "emoji" in value:
            self.fail(f"{path}/emoji", "is only allowed on plain_text")
        if kind == "plain_text" and "verbatim" in value:
            self.fail(f"{path}/verbatim", "is only allowed on mrkdwn")
        self.boolean(value, "emoji", "verbatim", path=path)
        self.string(value, "text", path, max_len=max_len, min_len=1, required=True)

    def unique_id(self, obj: Json, key: str, path: str, seen: set[str]) -> None:
        value = self.string(obj, key, path, max_len=255, min_len=1)
        if value is None:
            return
        if value in seen:
            self.fail(f"{path}/{key}", f"duplicate {key} `{value}`")
        seen.add(value)

    # -- blocks

    def blocks(self, blocks: Any, path: str, *, max_blocks: int) -> None:
        if not isinstance(blocks, list):
            self.fail(path, "must be an array")
            return
        if len(blocks) > max_blocks:
            self.fail(path, f"must provide no more than {max_blocks} items")
        for index, block in enumerate(blocks):
            self.block(block, f"{path}/{index}")

    def block(self, block: Any, path: str) -> None:
        if not self.is_object(block, path):
            return
        kind = block.get("type")
        if not isinstance(kind, str) or kind not in _BLOCK_KEYS:
            self.fail(f"{path}/type", f"unsupported type `{kind}`")
            return
        before = len(self.errors)
        self.keys(block, path, _BLOCK_KEYS[kind])
        self.unique_id(block, "block_id", path, self._block_ids)
        _BLOCK_CHECKS[kind](self, block, path)
        if len(self.errors) == before:
            self._sdk_net(block, path, Block.parse)

    def _section(self, block: Json, path: str) -> None:
        if "text" not in block and "fields" not in block:
            self.fail(path, "must provide either `text` or `fields`")
        self.text(block, "text", path, max_len=3000)
        fields = self.array(block, "fields", path, min_items=1, max_items=10, required=False)
        for index, item in enumerate(fields):
            self.text_object(item, f"{path}/fields/{index}", max_len=2000, plain_only=False)
        if "accessory" in block:
            self.element(block["accessory"], f"{path}/accessory", _ACCESSORY_TYPES)
        self.boolean(block, "expand", path=path)

    def _header(self, block: Json, path: str) -> None:
        self.text(block, "text", path, max_len=150, plain_only=True, required=True)

    def _context(self, block: Json, path: str) -> None:
        elements = self.array(block, "elements", path, min_items=1, max_items=10)
        for index, element in enumerate(elements):
            where = f"{path}/elements/{index}"
            kind = element.get("type") if isinstance(element, dict) else None
            if kind == "image":
                self.element(element, where, frozenset({"image"}))
            elif kind not in (None, "plain_text", "mrkdwn"):
                self.fail(f"{where}/type", f"unsupported type `{kind}` here")
            else:
                self.text_object(element, where, max_len=MAX_BLOCK_TEXT_TOTAL, plain_only=False)

    def _divider(self, block: Json, path: str) -> None:
        del block, path  # nothing but type and block_id

    def _actions(self, block: Json, path: str) -> None:
        elements = self.array(block, "elements", path, min_items=1, max_items=25)
        for index, element in enumerate(elements):
            self.element(element, f"{path}/elements/{index}", _ACTIONS_TYPES)

    def _input(self, block: Json, path: str) -> None:
        self.text(block, "label", path, max_len=2000, plain_only=True, required=True)
        self.text(block, "hint", path, max_len=2000, plain_only=True)
        self.boolean(block, "optional", "dispatch_action", path=path)
        if "element" not in block:
            self.fail(f"{path}/element", "missing required field")
        else:
            self.element(block["element"], f"{path}/element", _INPUT_TYPES)

    def _image(self, block: Json, path: str) -> None:
        self._image_source(block, path)
        self.text(block, "title", path, max_len=2000, plain_only=True)

    def _rich_text(self, block: Json, path: str) -> None:
        parts = self.array(block, "elements", path, min_items=1, max_items=MAX_MESSAGE_TEXT)
        for index, part in enumerate(parts):
            where = f"{path}/elements/{index}"
            if self.is_object(part, where) and part.get("type") not in _RICH_TEXT_PARTS:
                self.fail(f"{where}/type", f"unsupported type `{part.get('type')}`")

    def _image_source(self, obj: Json, path: str) -> None:
        if "image_url" not in obj and "slack_file" not in obj:
            self.fail(path, "must provide either `image_url` or `slack_file`")
        self.string(obj, "image_url", path, max_len=3000, min_len=1)
        self.string(obj, "alt_text", path, max_len=2000, min_len=1, required=True)

    def _sdk_net(self, raw: Json, path: str, parse: Callable[[Json], Any]) -> None:
        """slack_sdk's models know some rules too (date formats…): what they refuse, Slack does."""
        try:
            parsed = parse(copy.deepcopy(raw))
            if parsed is not None:
                parsed.validate_json()
        except SlackObjectFormationError as error:
            self.fail(path, str(error))
        except (TypeError, ValueError, KeyError, AttributeError) as error:
            self.fail(path, f"cannot be read ({error})")

    # -- elements

    def element(self, element: Any, path: str, allowed: frozenset[str]) -> None:
        if not self.is_object(element, path):
            return
        kind = element.get("type")
        if not isinstance(kind, str) or kind not in allowed:
            self.fail(f"{path}/type", f"unsupported type `{kind}` here")
            return
        before = len(self.errors)
        if kind in _ELEMENT_KEYS:
            self.keys(element, path, _ELEMENT_KEYS[kind])
        if kind == "image":
            self._image_source(element, path)
        else:
            self.unique_id(element, "action_id", path, self._action_ids)
            self.text(element, "placeholder", path, max_len=150, plain_only=True)
            self.confirm(element, path)
            self.boolean(element, "focus_on_load", path=path)
            check = _ELEMENT_CHECKS.get(kind)
            if check is not None:
                check(self, element, path)
        if len(self.errors) == before:
            self._sdk_net(element, path, BlockElement.parse)

    def _element_button(self, element: Json, path: str) -> None:
        self.text(element, "text", path, max_len=75, plain_only=True, required=True)
        self.string(element, "value", path, max_len=2000)
        self.string(element, "url", path, max_len=3000)
        self.string(element, "accessibility_label", path, max_len=75)
        self.style(element, path)

    def _element_static_select(self, element: Json, path: str) -> None:
        values = self.select_options(element, path)
        self.initial(element, "initial_option", path, values)

    def _element_multi_static_select(self, element: Json, path: str) -> None:
        values = self.select_options(element, path)
        self.initial(element, "initial_options", path, values)
        self.integer(element, "max_selected_items", path, low=1, high=100)

    def _element_radio_buttons(self, element: Json, path: str) -> None:
        values = self.options(element, "options", path, max_items=10, plain_only=False)
        self.initial(element, "initial_option", path, values)

    def _element_checkboxes(self, element: Json, path: str) -> None:
        values = self.options(element, "options", path, max_items=10, plain_only=False)
        self.initial(element, "initial_options", path, values)

    def _element_overflow(self, element: Json, path: str) -> None:
        self.options(element, "options", path, max_items=5, plain_only=True, url=True)

    def _element_plain_text_input(self, element: Json, path: str) -> None:
        low = self.integer(element, "min_length", path, low=0, high=3000)
        high = self.integer(element, "max_length", path, low=1, high=3000)
        if low is not None and high is not None and low > high:
            self.fail(f"{path}/min_length", "must not be greater than max_length")
        self.string(element, "initial_value", path, max_len=3000 if high is None else high)
        self.boolean(element, "multiline", path=path)

    def style(self, obj: Json, path: str) -> None:
        if "style" in obj and obj["style"] not in _STYLES:
            self.fail(f"{path}/style", "must be one of primary, danger")

    def confirm(self, element: Json, path: str) -> None:
        dialog = element.get("confirm")
        where = f"{path}/confirm"
        if dialog is None or not self.is_object(dialog, where):
            return
        self.keys(dialog, where, frozenset({"title", "text", "confirm", "deny", "style"}))
        self.text(dialog, "title", where, max_len=100, plain_only=True, required=True)
        self.text(dialog, "text", where, max_len=300, required=True)
        self.text(dialog, "confirm", where, max_len=30, plain_only=True, required=True)
        self.text(dialog, "deny", where, max_len=30, plain_only=True, required=True)
        self.style(dialog, where)

    def select_options(self, element: Json, path: str) -> set[str]:
        if ("options" in element) == ("option_groups" in element):
            self.fail(path, "must provide exactly one of `options` or `option_groups`")
        if "options" in element:
            return self.options(element, "options", path, max_items=100, plain_only=True)
        values: set[str] = set()
        groups = self.array(element, "option_groups", path, min_items=1, max_items=100)
        for index, group in enumerate(groups):
            where = f"{path}/option_groups/{index}"
            if self.is_object(group, where):
                self.keys(group, where, frozenset({"label", "options"}))
                self.text(group, "label", where, max_len=75, plain_only=True, required=True)
                values |= self.options(group, "options", where, max_items=100, plain_only=True)
        return values

    def options(
        self,
        obj: Json,
        key: str,
        path: str,
        *,
        max_items: int,
        plain_only: bool,
        url: bool = False,
    ) -> set[str]:
        """Checks the options; returns their values (to check initial options against)."""
        allowed = frozenset({"text", "value", "description"} | ({"url"} if url else set()))
        values: set[str] = set()
        for index, option in enumerate(
            self.array(obj, key, path, min_items=1, max_items=max_items)
        ):
            where = f"{path}/{key}/{index}"
            if not self.is_object(option, where):
                continue
            self.keys(option, where, allowed)
            self.text(option, "text", where, max_len=75, plain_only=plain_only, required=True)
            self.text(option, "description", where, max_len=75, plain_only=plain_only)
            self.string(option, "url", where, max_len=3000)
            value = self.string(option, "value", where, max_len=150, required=True)
            if value is not None:
                values.add(value)
        return values

    def initial(self, element: Json, key: str, path: str, values: set[str]) -> None:
        chosen = element.get(key)
        if chosen is None:
            return
        many = chosen if isinstance(chosen, list) else [chosen]
        for option in many:
            if not isinstance(option, dict) or option.get("value") not in values:
                self.fail(f"{path}/{key}", "must match one of the provided options")
                return

    # -- views

    def view(self, view: Any, path: str) -> None:
        if not self.is_object(view, path):
            return
        kind = view.get("type")
        if kind == "modal":
            self.keys(view, path, _MODAL_KEYS)
            self.text(view, "title", path, max_len=24, plain_only=True, required=True)
            self.text(view, "submit", path, max_len=24, plain_only=True)
            self.text(view, "close", path, max_len=24, plain_only=True)
            self.boolean(view, "clear_on_close", "notify_on_close", "submit_disabled", path=path)
            blocks = view.get("blocks")
            has_input = isinstance(blocks, list) and any(
                isinstance(b, dict) and b.get("type") == "input" for b in blocks
            )
            if has_input and "submit" not in view:
                self.fail(f"{path}/submit", "is required when the view has input blocks")
        elif kind == "home":
            self.keys(view, path, _HOME_KEYS)
        else:
            self.fail(f"{path}/type", "must be one of modal, home")
            return
        self.string(view, "callback_id", path, max_len=255)
        self.string(view, "external_id", path, max_len=255)
        self.string(view, "private_metadata", path, max_len=3000)
        if "blocks" not in view:
            self.fail(f"{path}/blocks", "missing required field")
        else:
            self.blocks(view["blocks"], f"{path}/blocks", max_blocks=MAX_VIEW_BLOCKS)


_Check = Callable[[_Checker, Json, str], None]

_BLOCK_CHECKS: dict[str, _Check] = {
    "section": _Checker._section,
    "header": _Checker._header,
    "context": _Checker._context,
    "divider": _Checker._divider,
    "actions": _Checker._actions,
    "input": _Checker._input,
    "image": _Checker._image,
    "rich_text": _Checker._rich_text,
}
_ELEMENT_CHECKS: dict[str, _Check] = {
    "button": _Checker._element_button,
    "static_select": _Checker._element_static_select,
    "multi_static_select": _Checker._element_multi_static_select,
    "radio_buttons": _Checker._element_radio_buttons,
    "checkboxes": _Checker._element_checkboxes,
    "overflow": _Checker._element_overflow,
    "plain_text_input": _Checker._element_plain_text_input,
}


def block_errors(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """What Slack would list under ``errors`` for these blocks; empty when it accepts them."""
    checker = _Checker()
    checker.blocks(blocks, "/blocks", max_blocks=max_blocks)
    return checker.errors


def view_errors(view: Any) -> list[str]:
    """What Slack would refuse in this modal or Home tab; empty when it accepts it."""
    checker = _Checker()
    checker.view(view, "/view")
    return checker.errors


def block_text_length(value: Any) -> int:
    """Characters of all ``text`` strings in blocks, counted for ``msg_blocks_too_long``."""
    if isinstance(value, list):
        return sum(block_text_length(item) for item in value)
    if isinstance(value, dict):
        return sum(
            len(item) if key == "text" and isinstance(item, str) else block_text_length(item)
            for key, item in value.items()
        )
    return 0

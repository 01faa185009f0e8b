"""Block Kit → HTML for the sandbox page: one test per block type, mrkdwn, and hostile text.

Whatever the bot (or a user, through the bot) puts in a message, the page must show it as
text: the only tags in the output are the renderer's own."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from trame_bot.sandbox import render
from trame_bot.sandbox.fake_slack import BOT_USER_ID, Message, StoredFile
from trame_bot.sandbox.mrkdwn import Names, mrkdwn, plain
from trame_bot.slack.blocks.modals import decline_modal

Json = dict[str, Any]
NAMES = Names(users={"U0OLIVIA": "Olivia"}, channels={"C0OPS": "acme-ops"})
HOSTILE = '<script>alert(1)</script>" onmouseover="alert(2)" \'><img src=x onerror=alert(3)>'


def txt(text: str) -> Json:
    return {"type": "plain_text", "text": text}


def md(text: str) -> Json:
    return {"type": "mrkdwn", "text": text}


def button(text: str = "Approve", **extra: Any) -> Json:
    return {"type": "button", "text": txt(text), "action_id": "run_approve", "value": "r1", **extra}


class Tags(HTMLParser):
    """Every start tag and its attributes, as a browser would parse them."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def names(self) -> set[str]:
        return {tag for tag, _ in self.tags}

    def shown(self) -> str:
        return "".join(self.text)


def only_own_markup(markup: str) -> None:
    """No tag, attribute or URL scheme the renderer does not write itself."""
    allowed = {
        "strong", "em", "s", "code", "br", "blockquote", "span", "a", "div", "section", "h3",
        "hr", "button", "label", "input", "textarea", "select", "option", "form", "header",
        "footer", "article", "time", "figure", "figcaption",
    }  # fmt: skip
    for tag, attrs in Tags(markup).tags:
        assert tag in allowed, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name == "href":
                assert value is not None
                assert value.startswith(("http://", "https://", "/sandbox/files/")), value


# ---- blocks --------------------------------------------------------------------------------


def test_header() -> None:
    html = render.block({"type": "header", "text": txt("Approval needed: <Invoice> & co")}, NAMES)
    assert html == '<h3 class="bk-header">Approval needed: &lt;Invoice&gt; &amp; co</h3>'


def test_section_text_is_mrkdwn() -> None:
    html = render.block(
        {"type": "section", "text": md("*Planned steps (2)*\n1. `sheets.append`")}, NAMES
    )
    assert '<div class="bk-text"><strong>Planned steps (2)</strong><br>' in html
    assert "1. <code>sheets.append</code>" in html


def test_section_fields() -> None:
    block = {"type": "section", "fields": [md("*Workflow*\n`invoice-sync`"), txt("*plain*")]}
    html = render.block(block, NAMES)
    assert '<div class="bk-fields">' in html
    fields = re.findall(r'<div class="bk-field">(.*?)</div>', html)
    assert fields == ["<strong>Workflow</strong><br><code>invoice-sync</code>", "*plain*"]


def test_section_accessory_button() -> None:
    block = {
        "type": "section",
        "block_id": "b1",
        "text": md("Run it?"),
        "accessory": button("Open", action_id="open", value="x"),
    }
    html = render.block(block, NAMES)
    (tag,) = [attrs for tag, attrs in Tags(html).tags if tag == "button"]
    assert tag == {
        "type": "button",
        "class": "bk-button",
        "data-block-id": "b1",
        "data-action-id": "open",
        "data-value": "x",
    }
    assert '<div class="bk-accessory">' in html


def test_context_with_text_and_image() -> None:
    block = {
        "type": "context",
        "elements": [
            md("<@U0OLIVIA> approved <!date^1700000000^{date_short_pretty}|2023-11-14 22:13 UTC>"),
            {"type": "image", "image_url": "https://x.example/i.png", "alt_text": "logo"},
        ],
    }
    html = render.block(block, NAMES)
    assert '<span class="mention">@Olivia</span> approved 2023-11-14 22:13 UTC' in html
    assert "[logo]" in html
    assert "<img" not in html


def test_divider() -> None:
    assert render.block({"type": "divider"}, NAMES) == '<hr class="bk-divider">'


def test_actions_with_styles_and_a_confirm_dialog() -> None:
    confirm = {
        "title": txt("Approve a production run?"),
        "text": txt("Invoice sync is marked production."),
        "confirm": txt("Approve"),
        "deny": txt("Cancel"),
    }
    block = {
        "type": "actions",
        "block_id": "run_actions",
        "elements": [
            button(style="primary", confirm=confirm),
            button("Decline", action_id="run_decline", style="danger"),
            button("Docs", action_id="docs", url="https://docs.example.com/a?b=1&c=2"),
            button("Evil", action_id="evil", url="javascript:alert(1)"),
        ],
    }
    html = render.block(block, NAMES)
    parsed = Tags(html)
    buttons = [attrs for tag, attrs in parsed.tags if tag == "button"]
    assert [b["class"] for b in buttons] == [
        "bk-button bk-primary",
        "bk-button bk-confirm-no",
        "bk-button bk-primary bk-confirm-yes",
        "bk-button bk-danger",
        "bk-button",  # a button whose URL is not http(s) is a plain button, never a link
    ]
    assert buttons[0]["data-block-id"] == "run_actions"
    assert (
        '<div class="bk-confirm" hidden><h3 class="bk-confirm-title">Approve a production run?</h3>'
        in html
    )
    assert "Invoice sync is marked production." in html
    links = [attrs for tag, attrs in parsed.tags if tag == "a"]
    assert links == [
        {
            "class": "bk-button",
            "href": "https://docs.example.com/a?b=1&c=2",
            "rel": "noopener noreferrer",
            "target": "_blank",
        }
    ]


def test_modal_inputs_from_the_bots_decline_form() -> None:
    view = decline_modal("run1", "Invoice <sync>", "U0OLIVIA", "C0OPS")
    html = render.modal(view, NAMES, "V1")
    parsed = Tags(html)
    form = next(attrs for tag, attrs in parsed.tags if tag == "form")
    assert form == {"class": "bk-modal", "data-view-id": "V1", "novalidate": None}
    assert "Decline run" in parsed.shown()
    assert "Invoice <sync>" in parsed.shown()
    select = next(attrs for tag, attrs in parsed.tags if tag == "select")
    assert select["name"] == "decline_category"
    assert select["data-action-id"] == "decline_category"
    options = [attrs.get("value") for tag, attrs in parsed.tags if tag == "option"]
    assert options[0] == ""
    assert "wrong_data" in options
    textarea = next(attrs for tag, attrs in parsed.tags if tag == "textarea")
    assert (textarea["name"], textarea["maxlength"]) == ("decline_reason", "2000")
    assert "minlength" not in textarea  # the bot answers a short reason; the page lets it
    submit = [a for t, a in parsed.tags if t == "button" and "bk-submit" in (a["class"] or "")]
    assert len(submit) == 1


def test_single_line_input_keeps_what_was_typed_and_shows_the_bots_error() -> None:
    view = {
        "type": "modal",
        "title": txt("Go live"),
        "submit": txt("Go live"),
        "blocks": [
            {
                "type": "input",
                "block_id": "signed_off_by",
                "label": txt("Who signed off"),
                "hint": txt("A name"),
                "element": {"type": "plain_text_input", "action_id": "who", "max_length": 200},
            },
            {
                "type": "input",
                "block_id": "kind",
                "optional": True,
                "label": txt("Kind"),
                "element": {
                    "type": "static_select",
                    "action_id": "k",
                    "options": [
                        {"text": txt("Email"), "value": "email"},
                        {"text": txt("Ticket"), "value": "ticket"},
                    ],
                },
            },
        ],
    }
    form = render.Form(
        values={"signed_off_by": 'Dana "CFO"', "kind": "ticket"},
        errors={"signed_off_by": "who at the client <b>signed</b> off"},
    )
    html = render.modal(view, NAMES, "V2", form)
    parsed = Tags(html)
    field = next(attrs for tag, attrs in parsed.tags if tag == "input")
    assert field["value"] == 'Dana "CFO"'
    assert field["type"] == "text"
    assert '<div class="bk-input has-error" data-block-id="signed_off_by">' in html
    assert (
        '<div class="bk-error" role="alert">who at the client &lt;b&gt;signed&lt;/b&gt; off</div>'
        in html
    )
    assert '<option value="ticket" selected>Ticket</option>' in html
    assert "(optional)" in html
    assert "A name" in html


def test_file_links_serve_the_uploaded_bytes() -> None:
    done = StoredFile("F00000001", "audit-acme.csv", 5, "Audit log of <acme>", b"a,b\n1")
    html = render.file_link(done)
    link = next(attrs for tag, attrs in Tags(html).tags if tag == "a")
    assert link == {"href": "/sandbox/files/F00000001", "download": "audit-acme.csv"}
    assert "Audit log of &lt;acme&gt;" in html
    assert "5 bytes" in html
    pending = render.file_link(StoredFile("F2", "x.csv", 5))
    assert "uploading" in pending
    assert "<a" not in pending


def test_a_message_with_thread_and_files() -> None:
    card = Message("C0OPS", "1700000000.000100", "fallback", [{"type": "divider"}], edited=True)
    reply = Message("C0OPS", "1700000001.000100", "👍 <@U0OLIVIA> approved", thread_ts=card.ts)
    html = render.message(card, NAMES, [reply])
    assert 'data-channel="C0OPS" data-ts="1700000000.000100"' in html
    assert "(edited)" in html
    assert "APP" in html
    assert "fallback" not in html
    assert '<div class="thread-count">1 reply</div>' in html
    assert "@Olivia</span> approved" in html
    human = Message("C0OPS", "1.2", "hi *there*", user="U0OLIVIA")
    assert '<span class="author">Olivia</span>' in render.message(human, NAMES)
    assert "hi <strong>there</strong>" in render.message(human, NAMES)
    assert BOT_USER_ID not in render.message(card, NAMES)


def test_ephemeral_lines_say_who_sees_them() -> None:
    typed = render.ephemeral("1.0", "", [], NAMES, command="/trame pause <x>")
    assert "Only visible to you" in typed
    assert "/trame pause &lt;x&gt;" in typed
    answer = render.ephemeral("1.0", "⏸️ *Invoice sync* is paused", [], NAMES)
    assert "<strong>Invoice sync</strong> is paused" in answer


def test_unknown_blocks_and_elements_are_named_not_dropped() -> None:
    assert "[video block]" in render.blocks([{"type": "video"}, "junk", None], NAMES)
    html = render.block({"type": "actions", "elements": [{"type": "overflow"}]}, NAMES)
    assert "[overflow]" in html


# ---- mrkdwn --------------------------------------------------------------------------------


def test_mrkdwn_formats_minimally() -> None:
    assert mrkdwn("*bold* _it_ ~gone~ `a*b*c`") == (
        "<strong>bold</strong> <em>it</em> <s>gone</s> <code>a*b*c</code>"
    )
    assert mrkdwn("snake_case_name and 2*3*4") == "snake_case_name and 2*3*4"
    assert mrkdwn("see <#C0OPS> and <#C0NEW|new-ch>, cc <!here>", NAMES) == (
        'see <span class="mention">#acme-ops</span> and <span class="mention">#new-ch</span>,'
        ' cc <span class="mention">@here</span>'
    )
    assert mrkdwn("<@U0NOBODY>") == '<span class="mention">@U0NOBODY</span>'
    assert mrkdwn("x\n>quoted\n>more\ny") == "x<br><blockquote>quoted<br>more</blockquote>y"


def test_mrkdwn_links_are_safe() -> None:
    assert mrkdwn("<https://a.example/?q=1&amp;r=2|the *docs*>") == (
        '<a href="https://a.example/?q=1&amp;r=2" rel="noopener noreferrer" target="_blank">'
        "the *docs*</a>"
    )
    assert mrkdwn('<https://a.example/"onclick="x|y>').startswith(
        '<a href="https://a.example/&quot;onclick=&quot;x"'
    )
    for hostile in (
        "<javascript:alert(1)|click>",
        "<data:text/html,hi|click>",
        "<mailto:a@b|mail>",
    ):
        assert "<a" not in mrkdwn(hostile)


def test_slack_escaped_text_reads_as_in_slack_and_stays_inert() -> None:
    # The bot escapes user text for Slack (&lt; &gt; &amp;); Slack shows the characters.
    shown = mrkdwn("&lt;script&gt;alert(1)&lt;/script&gt; &amp;amp;")
    assert shown == "&lt;script&gt;alert(1)&lt;/script&gt; &amp;amp;"
    assert Tags(shown).shown() == "<script>alert(1)</script> &amp;"


def test_hostile_text_everywhere_stays_text() -> None:
    view = {
        "type": "modal",
        "title": txt(HOSTILE),
        "submit": txt(HOSTILE),
        "close": txt(HOSTILE),
        "blocks": [
            {"type": "header", "text": txt(HOSTILE)},
            {"type": "section", "block_id": HOSTILE, "text": md(HOSTILE), "fields": [md(HOSTILE)]},
            {"type": "context", "elements": [md(HOSTILE), txt(HOSTILE)]},
            {
                "type": "actions",
                "block_id": HOSTILE,
                "elements": [button(HOSTILE, action_id=HOSTILE, value=HOSTILE, style=HOSTILE)],
            },
            {
                "type": "input",
                "block_id": HOSTILE,
                "label": txt(HOSTILE),
                "element": {
                    "type": "static_select",
                    "action_id": HOSTILE,
                    "placeholder": txt(HOSTILE),
                    "options": [{"text": txt(HOSTILE), "value": HOSTILE}],
                },
            },
            {
                "type": "input",
                "block_id": "b",
                "label": txt("x"),
                "element": {"type": "plain_text_input", "action_id": "a", "multiline": True},
            },
            {"type": HOSTILE},
        ],
    }
    form = render.Form(values={"b": "</textarea>" + HOSTILE}, errors={HOSTILE: HOSTILE})
    html = render.modal(view, NAMES, HOSTILE, form)
    only_own_markup(html)
    assert "<script" not in html
    assert "<img" not in html
    textarea = Tags(html).tags
    assert any(tag == "textarea" for tag, _ in textarea)
    data = [a for t, a in Tags(html).tags if t == "button" and a.get("data-value")]
    assert data[0]["data-value"] == HOSTILE
    assert data[0]["data-action-id"] == HOSTILE
    message = Message(
        "C0OPS",
        HOSTILE,
        HOSTILE,
        user=HOSTILE,
        files=[StoredFile(HOSTILE, HOSTILE, 1, HOSTILE, b"x")],
    )
    only_own_markup(render.message(message, NAMES))
    only_own_markup(render.ephemeral(HOSTILE, HOSTILE, [], NAMES, command=HOSTILE))
    only_own_markup(
        render.home(
            {"type": "home", "blocks": [{"type": "section", "text": md(HOSTILE)}]}, NAMES, HOSTILE
        )
    )


def test_the_renderers_placeholders_cannot_be_forged() -> None:
    forged = "\ue0000\ue001 <@U0OLIVIA> \ue000"
    assert mrkdwn(forged, NAMES) == '0 <span class="mention">@Olivia</span> '


PIECES = ["<", ">", "|", "&", "&lt;", "&gt;", "&amp;", "*", "_", "~", "`", "\n", "\n>", "\"", "'",
          " ", "x", "@U0OLIVIA", "#C0OPS", "!date^1^{date}", "!here", "https://a.example/",
          "javascript:", "\ue000", "\ue001", "0"]  # fmt: skip
MRKDWN = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(MRKDWN, st.text()))
def test_any_mrkdwn_renders_only_the_renderers_own_markup(text: str) -> None:
    only_own_markup(mrkdwn(text, NAMES))
    only_own_markup(plain(text))

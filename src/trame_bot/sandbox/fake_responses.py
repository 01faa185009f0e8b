"""``response_url`` for the fake Slack: what an app posts there lands where Slack puts it (a
replaced or deleted original, a new message, or an ephemeral), refused as Slack refuses it: a
sixth use is 404 ``used_url``, a body without text or blocks 400 ``no_text``."""

from __future__ import annotations

from dataclasses import dataclass, replace

from aiohttp import web

from trame_bot.sandbox.fake_methods import WebApiMethods
from trame_bot.sandbox.fake_records import TEAM_ID, Ephemeral, Message, Response
from trame_bot.sandbox.fake_wire import Args, Refused, content, flag

RESPONSE_URL_USES = 5


@dataclass(frozen=True)
class ResponseTarget:
    channel: str
    message_ts: str | None
    user: str | None


class ResponseUrls(WebApiMethods):
    """The ``response_url`` side of FakeSlack."""

    responses: list[Response]
    _response_targets: dict[str, ResponseTarget]
    _response_uses: dict[str, int]

    def response_url(
        self,
        base_url: str,
        key: str,
        *,
        channel: str | None = None,
        message_ts: str | None = None,
        user: str | None = None,
    ) -> str:
        """A ``response_url`` served by this fake at ``base_url``.

        With ``channel`` (and ``message_ts`` for an interaction on a message) the answers
        also land where Slack would put them: replaced or deleted original, new message, or
        an ephemeral message for ``user``.
        """
        if channel is not None:
            self._response_targets[key] = ResponseTarget(channel, message_ts, user)
        return f"{base_url.rstrip('/')}/respond/{key}"

    async def _handle_respond(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        uses = self._response_uses.get(key, 0)
        self._response_uses[key] = uses + 1
        response = Response(
            key=key,
            body=body,
            at=self._clock(),
            text=body.get("text") if isinstance(body.get("text"), str) else None,
            response_type=str(body.get("response_type") or "ephemeral"),
            replace_original=flag(body.get("replace_original")),
            delete_original=flag(body.get("delete_original")),
        )
        try:
            if uses >= RESPONSE_URL_USES:
                raise Refused("used_url")
            if not response.delete_original:
                text, blocks = content(Args(body, ""), require=True)
                response = replace(response, text=text, blocks=blocks)
        except Refused as refusal:
            self.responses.append(replace(response, error=refusal.error))
            status = 404 if refusal.error == "used_url" else 400
            return web.Response(status=status, text=refusal.error)
        self.responses.append(response)
        self._deliver(response)
        return web.Response(text="ok")

    def _deliver(self, response: Response) -> None:
        target = self._response_targets.get(response.key)
        if target is None:
            return
        original = self.message(target.channel, target.message_ts) if target.message_ts else None
        team = self.directory.team(self.directory.owner(target.channel) or TEAM_ID)
        if response.delete_original:
            if original is not None:
                self._channels[target.channel].remove(original)
        elif response.replace_original and original is not None:
            self._revise(original, response.text or "", response.blocks)
        elif response.response_type == "in_channel":
            message = Message(
                target.channel,
                self._next_ts(),
                response.text or "",
                response.blocks,
                user=team.bot_user_id,
                team=team.id,
                bot_id=team.bot_id,
            )
            self._post(message)
        elif target.user is not None:
            self.ephemerals.append(
                Ephemeral(
                    target.channel,
                    target.user,
                    self._next_ts(),
                    response.text or "",
                    response.blocks,
                    team=team.id,
                )
            )

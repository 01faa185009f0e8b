"""A local stand-in for Slack: a strict, recording fake Web API, signed requests as Slack sends
them, and the `trame-bot serve --sandbox` page built on both (`app`)."""

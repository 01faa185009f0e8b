"""trame-bot: human approval and governance for Trame workflow automation, in Slack."""

__version__ = "0.1.0"

"""Pure governance rules and the plain values they work on: no IO, no database, no Slack."""

"""The HTTP server: Slack's request URL, health endpoints (and, later, the engine's API)."""

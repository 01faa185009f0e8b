"""Rendering an incident report: pure functions from the report to PDF bytes or Markdown text."""

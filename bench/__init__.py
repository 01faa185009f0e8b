"""Benchmarks for trame-bot: every figure is a ratio against a baseline measured in the same run.

Run them all with `python -m bench` from the repository root (`--quick` for a smoke run,
`--postgres` for PostgreSQL); see `bench/__main__.py`.
"""

"""The workspace setting "minimum approved pilot runs" on the command line: create, set, show,
and bad values refused with a message that says what is wanted."""

from __future__ import annotations

import pytest

from tests.cli.test_cli import run  # noqa: F401 (the fixture)

CREATE = ("workspace", "create", "acme", "--name", "Acme", "--approvals-channel", "C0APPROVE")


def shown(run, key: str = "acme") -> str:  # type: ignore[no-untyped-def]  # noqa: F811
    rows = run("workspace", "show", key).output.splitlines()
    (row,) = [r for r in rows if r.startswith("min approved pilot runs")]
    return str(row.split()[-1])


def test_the_minimum_defaults_to_one_and_can_be_set(run) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    run(*CREATE)
    assert shown(run) == "1"
    run("workspace", "set", "acme", "--min-approved-pilot-runs", "3")
    assert shown(run) == "3"
    run("workspace", "set", "acme", "--min-approved-pilot-runs", "0")
    assert shown(run) == "0"
    run(*CREATE[:2], "beta", *CREATE[3:-1], "C0BETA", "--min-approved-pilot-runs", "2")
    assert shown(run, "beta") == "2"
    audit = run("audit", "list", "acme").output
    assert "changed min_approved_pilot_runs" in audit


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "-1 is not in the range x>=0"),
        ("two", "'two' is not a valid integer"),
        ("1.5", "not a valid integer"),
    ],
)
def test_a_bad_minimum_is_refused_clearly(run, value: str, message: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    run(*CREATE)
    refused = run("workspace", "set", "acme", "--min-approved-pilot-runs", value, ok=False)
    assert refused.exit_code == 2
    assert "--min-approved-pilot-runs" in refused.output
    assert message in refused.output
    assert shown(run) == "1"
    created = run(
        *CREATE[:2], "beta", *CREATE[3:-1], "C0BETA", "--min-approved-pilot-runs", value, ok=False
    )
    assert created.exit_code == 2
    assert "beta" not in run("workspace", "list").output

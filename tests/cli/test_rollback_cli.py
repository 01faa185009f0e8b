"""`workflow status … --rollback-disable-trigger` records the plan; `workflow rollback` runs it."""

from __future__ import annotations

from tests.cli.test_cli import acme, run  # noqa: F401 (fixtures)


def test_a_trigger_plan_recorded_at_go_live_is_carried_out(run, acme) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    pending = run("run", "request", "acme", "invoice-sync", "--by", "U0MEMBER1")
    run(
        "run", "decide", "acme", pending.output.split()[1].rstrip(":"), "approve", "--by", "U0OWNER"
    )
    live = run(
        "workflow",
        "status",
        "acme",
        "invoice-sync",
        "live",
        "--signed-off-by",
        "Jane (client)",
        "--evidence",
        "mail of 2026-11-20",
        "--rollback-plan",
        "then tell Jane",
        "--rollback-disable-trigger",
        "nightly",
    )
    assert "is now live" in live.output
    done = run(
        "workflow", "rollback", "acme", "invoice-sync", "--by", "U0MEMBER1", "--why", "bad run"
    )
    assert "rolled back: disabled nightly" in done.output
    again = run("workflow", "rollback", "acme", "invoice-sync", "--by", "U0MEMBER1", ok=False)
    assert "already off" in again.stderr

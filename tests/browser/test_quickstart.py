"""The README's quick start, walked in a real headless Chromium: `trame-bot serve --sandbox` as
a process, the page at /sandbox, and every step the README tells a newcomer to try, ending with
a client's own Slack installed through the fake Slack's consent page.

Needs Debian's chromium (`apt-get install chromium chromium-driver`, as `.ci/run` does) and
Playwright for Python (the `dev` extra); Playwright's own browsers are never downloaded.
Screenshots of each step land in `tests/browser/screenshots/` (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's chromium to run the browser test "
        "(apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
playwright = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed (pip install -e '.[dev]')"
)
from playwright.sync_api import Locator, Page, expect, sync_playwright  # noqa: E402

# The page polls every second and the bot answers through a real server on a 2-core machine
# that CI may share with other work: give each expectation room, not a race.
expect.set_options(timeout=20_000)

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
APPROVALS = "#pane-C0APPROVALS"
OPS = "#pane-C0OPS"
GLOBEX_APPROVALS = "#pane-C0GLOBEXAPPROVALS"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command() -> list[str]:
    """The README's `.venv/bin/trame-bot`: the entry point next to this interpreter."""
    script = Path(sys.executable).parent / "trame-bot"
    return [str(script)] if script.exists() else [sys.executable, "-m", "trame_bot"]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[str]:
    """`trame-bot serve --sandbox` on a free port, in a fresh folder, with no Slack settings."""
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "TRAME_")) and key not in ("DATABASE_URL", "PORT")
    }
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'sandbox.db'}", LOG_LEVEL="WARNING")
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*_command(), "serve", "--sandbox", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the sandbox stopped at start:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the sandbox did not start within 30 s:\n{log.read_text()}")


class Walk:
    """The page, with a numbered screenshot after each step."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.step = 0

    def shot(self, name: str, page: Page | None = None) -> None:
        self.step += 1
        (page or self.page).screenshot(path=SCREENSHOTS / f"{self.step:02d}-{name}.png")

    def be(self, who: str) -> None:
        self.page.select_option("#who", label=who)
        expect(self.page.locator("#who")).to_have_value(self._id(who))

    def _id(self, who: str) -> str:
        value = self.page.locator("#who option", has_text=who).get_attribute("value")
        assert value is not None
        return value

    def request_run(self, workflow: str, by: str = "Mia (member)") -> None:
        self.page.select_option("#engine-workflow", label=workflow)
        self.page.select_option("#engine-by", label=by)
        self.page.get_by_role("button", name="Request a run").click()

    def card(self, text: str, channel: str = APPROVALS) -> Locator:
        return self.page.locator(f"{channel} > article.msg", has_text=text).last

    def team(self, name: str) -> None:
        self.page.locator("#teams .team", has_text=name).click()
        expect(self.page.locator("#team-name")).to_have_text(name)

    def report_health(self, connector: str, status: str, error: str = "") -> None:
        self.page.select_option("#health-connector", label=connector)
        self.page.select_option("#health-status", status)
        self.page.fill("#health-error", error)
        self.page.get_by_role("button", name="Report connector health").click()

    def type(self, command: str) -> None:
        self.page.fill("#command", command)
        self.page.press("#command", "Enter")


def test_the_readme_quick_start_in_the_sandbox(sandbox: str, tmp_path: Path) -> None:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            _walk(Walk(page), sandbox, tmp_path)
            assert errors == []
        finally:
            browser.close()


def _walk(walk: Walk, url: str, tmp_path: Path) -> None:
    page = walk.page
    page.goto(url + "/sandbox")
    expect(page.locator("#pane-title")).to_have_text("# acme-approvals")
    # The demo workspace was seeded at start: the production workflow went live after an
    # approved pilot run, and the broken connector was reported in the ops channel.
    expect(walk.card("Approved: Payroll export")).to_be_visible()
    expect(page.locator(APPROVALS)).to_contain_text("promoted to live")
    walk.shot("seeded")
    page.get_by_role("button", name="# acme-ops").click()
    expect(page.locator("#pane-C0OPS")).to_contain_text("acme-hubspot")
    page.get_by_role("button", name="# acme-approvals").click()

    # 1. Approve a Pilot run: the engine asks, the card appears; only the named reviewer decides.
    walk.request_run("Invoice sync (pilot)")
    expect(page.locator("#engine-result")).to_contain_text("201 · pending")
    card = walk.card("Approval needed: Invoice sync")
    expect(card).to_be_visible()
    walk.shot("run-requested")
    card.get_by_role("button", name="Approve").click()
    expect(page.locator("#dialog")).to_contain_text("Approve a production run?")
    walk.shot("confirm-dialog")
    page.locator("#dialog").get_by_role("button", name="Approve").click()
    expect(page.locator(f"{APPROVALS} .ephemeral").last).to_contain_text("reviewer")
    walk.shot("not-a-reviewer")
    walk.be("Clara (client reviewer)")
    walk.card("Approval needed: Invoice sync").get_by_role("button", name="Approve").click()
    page.locator("#dialog").get_by_role("button", name="Approve").click()
    approved = walk.card("Approved: Invoice sync")
    expect(approved).to_contain_text("@Clara")
    expect(approved.locator(".thread")).to_contain_text("approved")
    expect(approved.get_by_role("button", name="Approve")).to_have_count(0)
    walk.shot("approved")

    # 2. Decline one with a reason: the bot's field error first, for a reason too short.
    walk.be("Olivia (owner)")
    walk.request_run("Vendor onboarding (pilot)")
    expect(page.locator("#engine-result")).to_contain_text("pending")
    walk.card("Approval needed: Vendor onboarding").get_by_role("button", name="Decline").click()
    modal = page.locator("#dialog form.bk-modal")
    expect(modal).to_contain_text("Decline run")
    modal.locator("select").select_option(index=1)
    modal.locator("textarea").fill("Too short")
    walk.shot("decline-modal")
    modal.get_by_role("button", name="Decline").click()
    expect(modal.locator(".bk-error")).to_contain_text("at least 10 characters")
    walk.shot("decline-field-error")
    modal.locator("textarea").fill("The vendor list still holds last month's test entries.")
    modal.get_by_role("button", name="Decline").click()
    expect(page.locator("#overlay")).to_be_hidden()
    declined = walk.card("Declined: Vendor onboarding")
    expect(declined).to_contain_text("last month's test entries")
    walk.shot("declined")

    # 3. Pause a workflow: the answer is ephemeral, the change is announced in the channel.
    walk.type("/trame pause invoice-sync client asked to wait")
    expect(page.locator(f"{APPROVALS} .ephemeral").last).to_contain_text("is paused")
    announced = page.locator(f"{APPROVALS} > article.msg").filter(has_text="client asked to wait")
    expect(announced.filter(has_text="paused")).not_to_have_count(0)
    walk.shot("paused")

    # 4. Export the audit log: a CSV file in the channel, downloadable from the page.
    walk.type("/trame audit export")
    link = page.locator(f"{APPROVALS} .file a").last
    expect(link).to_contain_text("Audit log of acme")
    walk.shot("audit-export")
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / "audit.csv"
    download.value.save_as(saved)
    exported = saved.read_text()
    assert "run.approved" in exported
    assert "run.declined" in exported
    assert "workflow.status_changed" in exported

    # The App Home shows what waits for the chosen person.
    page.get_by_role("button", name="trame-bot · Home").click()
    expect(page.locator("#pane-home")).to_contain_text("Waiting for your approval")
    walk.shot("app-home")

    # 5. A client's own Slack: Globex's team shows only its channels, and trame-bot is not
    # installed there yet. Install opens the operator's link: the fake Slack's consent page.
    walk.team("Globex")
    expect(page.locator("#pane-title")).to_have_text("# globex-approvals")
    expect(page.locator("#nav-channels")).not_to_contain_text("acme")
    expect(page.locator("#who")).to_contain_text("Grace (owner)")
    banner = page.locator("#banner")
    expect(banner).to_contain_text("trame-bot is not installed in this Slack")
    walk.shot("globex-not-installed")
    with page.context.expect_page() as opened:
        banner.get_by_role("link", name="Install trame-bot").click()
    consent = opened.value
    team = consent.locator('section.team[data-team="T0GLOBEX"]')
    expect(team).to_contain_text("Globex")
    expect(consent.locator("section.team")).to_have_count(1)
    walk.shot("slack-consent-page", consent)
    team.get_by_role("button", name="Allow").click()
    expect(consent.locator("h1")).to_have_text("trame-bot is installed")
    expect(consent.locator("body")).to_contain_text("Slack team Globex for globex")
    walk.shot("globex-installed", consent)
    consent.close()

    # Back on the page: installed, and a Globex run's card lands in Globex's channel only.
    expect(banner).to_be_hidden()
    walk.request_run("Shipment sync (pilot)", by="Hugo (member)")
    expect(page.locator("#engine-result")).to_contain_text("201 · pending")
    expect(walk.card("Approval needed: Shipment sync", GLOBEX_APPROVALS)).to_be_visible()
    walk.shot("globex-card")
    walk.team("Northwind Integrations")
    expect(page.locator("#pane-title")).to_have_text("# acme-approvals")
    expect(walk.card("Declined: Vendor onboarding")).to_be_visible()
    expect(page.locator(APPROVALS)).not_to_contain_text("Shipment sync")

    _incident(walk, tmp_path)


def _incident(walk: Walk, tmp_path: Path) -> None:
    """6. An incident: a connector breaks, the alert's brake, the recovery, resume, the report."""
    page = walk.page
    page.get_by_role("button", name="# acme-ops").click()
    walk.report_health("acme-salesforce (ok)", "error", "401 from Salesforce: session expired")
    expect(page.locator("#health-result")).to_contain_text("200 · needs_attention")
    alert = page.locator(f"{OPS} > article.msg", has_text="acme-salesforce").filter(
        has_text="needs attention"
    )
    expect(alert).to_have_count(1)
    # Live first; Invoice sync is still paused from step 3, so the brake leaves it out.
    expect(alert).to_contain_text(
        "Affects: Payroll export (live), Vendor onboarding (pilot), Invoice sync (paused)"
    )
    walk.shot("incident-alert")
    walk.be("Mia (member)")
    alert.get_by_role("button", name="Pause affected workflows").click()
    dialog = page.locator("#dialog")
    expect(dialog).to_contain_text("Pause 2 workflows?")
    expect(dialog).to_contain_text("Pause Payroll export, Vendor onboarding.")
    walk.shot("incident-confirm-pause")
    dialog.get_by_role("button", name="Pause them").click()
    expect(page.locator(f"{OPS} .ephemeral").last).to_contain_text(
        "Paused Payroll export, Vendor onboarding."
    )
    # Updated in place: who paused what and when, and no button any more.
    expect(alert).to_contain_text("@Mia paused Payroll export, Vendor onboarding")
    expect(alert.get_by_role("button", name="Pause affected workflows")).to_have_count(0)
    walk.shot("incident-paused")

    walk.report_health("acme-salesforce (needs_attention)", "ok")
    expect(page.locator("#health-result")).to_contain_text("200 · ok")
    notice = page.locator(f"{OPS} > article.msg", has_text="acme-salesforce").filter(
        has_text="healthy again"
    )
    expect(notice).to_contain_text(
        "Paused from the alert and unchanged since: Payroll export, Vendor onboarding"
    )
    notice.get_by_role("button", name="Resume them").click()
    dialog.get_by_role("button", name="Resume them").click()
    expect(page.locator(f"{OPS} .ephemeral").last).to_contain_text("needs the admin role")
    walk.be("Adam (admin)")
    notice.get_by_role("button", name="Resume them").click()
    expect(dialog).to_contain_text("each to the status it had")
    walk.shot("incident-confirm-resume")
    dialog.get_by_role("button", name="Resume them").click()
    expect(page.locator(f"{OPS} .ephemeral").last).to_contain_text(
        "Resumed Payroll export, Vendor onboarding."
    )
    expect(notice).to_contain_text("@Adam resumed Payroll export, Vendor onboarding")
    expect(notice.get_by_role("button", name="Resume them")).to_have_count(0)
    # Each back to the status it had; the one paused by someone else stays paused.
    expect(page.locator("#engine-workflow")).to_contain_text("Payroll export (live)")
    expect(page.locator("#engine-workflow")).to_contain_text("Invoice sync (paused)")
    walk.shot("incident-resumed")

    # The report for the client: the PDF and its export, checked offline.
    walk.be("Olivia (owner)")
    walk.type("/trame report connector:acme-salesforce")
    files = page.locator(f"{OPS} .file a")
    expect(files.filter(has_text=".pdf")).to_have_count(1)
    export = files.filter(has_text=".jsonl")
    expect(export).to_have_count(1)
    expect(page.locator(OPS)).to_contain_text("trame-bot audit verify --file incident-")
    walk.shot("incident-report")
    with page.expect_download() as download:
        export.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.startswith("incident-")
    assert saved.suffix == ".jsonl"
    verified = subprocess.run(
        [*_command(), "audit", "verify", "--file", str(saved)],
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "export verified: " in verified.stdout
    assert "of workspace acme" in verified.stdout

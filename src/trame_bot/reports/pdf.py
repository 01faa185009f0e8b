"""The incident report as a PDF a service integrator sends to a client as it is (fpdf2, with
the DejaVu fonts matplotlib ships, so any name or reason in any Latin, Greek or Cyrillic script
prints; a character the font lacks prints as "?")."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib
from fpdf import FPDF, FontFace
from fpdf.fonts import TTFFont

from trame_bot.domain.incident import IncidentReport, category_label
from trame_bot.reports import wording as w
from trame_bot.reports.chart import timeline_png

FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
SANS, MONO = "DejaVu", "DejaVuMono"
INK, MUTED, RULE, HEAD_FILL = (16, 22, 26), (92, 112, 128), (206, 217, 224), (235, 241, 245)


class _Document(FPDF):
    title_line = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(SANS, "", 7)
        self.set_text_color(*MUTED)
        self.cell(0, 5, self.title_line, align="L")
        self.cell(0, 5, f"page {self.page_no()}/{{nb}}", align="R")


def render_pdf(report: IncidentReport, export_name: str) -> bytes:
    r = report
    pdf = _Document(format="A4")
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(True, margin=16)
    pdf.add_font(SANS, "", FONTS / "DejaVuSans.ttf")
    pdf.add_font(SANS, "B", FONTS / "DejaVuSans-Bold.ttf")
    pdf.add_font(MONO, "", FONTS / "DejaVuSansMono.ttf")
    pdf.set_title(f"Incident report: {r.entity_name}")
    pdf.set_author(r.workspace_name)
    pdf.set_creator("trame-bot")
    pdf.set_creation_date(r.generated_at)
    pdf.title_line = f"{r.workspace_name} · incident report · {r.entity}"
    cmap = _Printable(pdf)
    pdf.add_page()

    pdf.set_text_color(*INK)
    pdf.set_font(SANS, "B", 17)
    _para(pdf, 8, cmap(f"Incident report: {r.entity_name}"))
    pdf.set_font(SANS, "", 9)
    pdf.set_text_color(*MUTED)
    _para(
        pdf,
        5,
        cmap(
            f"{r.entity} · workspace {r.workspace_name}\n"
            f"Window: {w.window(r)}\n"
            f"Prepared {w.when(r, r.generated_at)} by {w.actor(r.generated_by)}"
        ),
    )
    pdf.ln(2)

    _heading(pdf, "Summary")
    pdf.set_font(SANS, "", 10)
    for line in [*(w.outage_line(o) for o in r.outages), w.runs_line(r)]:
        _para(pdf, 5.5, cmap(f"•  {line[:1].upper()}{line[1:]}."))
    _para(
        pdf,
        5.5,
        f"•  {len(r.remediation)} remediation actions, {len(r.timeline)} audit events in all.",
    )
    pdf.ln(2)
    pdf.image(io.BytesIO(timeline_png(r)), w=pdf.epw)

    _heading(pdf, "Paused and unhealthy")
    _table(
        pdf,
        cmap,
        ("Entity", "State", "From", "To", "Duration"),
        list(w.span_rows(r)),
        (34, 14, 22, 22, 14),
    )

    _heading(pdf, "Runs")
    pdf.set_font(SANS, "", 10)
    _para(pdf, 5.5, cmap(w.runs_line(r)[:1].upper() + w.runs_line(r)[1:] + "."))
    pdf.ln(1)
    _subheading(pdf, "Declined runs")
    _table(
        pdf,
        cmap,
        ("When", "Workflow", "Declined by", "Category", "Reason"),
        [
            (
                w.when(r, d.at),
                d.workflow,
                w.actor(d.by),
                category_label(d.category),
                d.reason or "—",
            )
            for d in r.declines
        ],
        (20, 18, 18, 14, 36),
    )

    _heading(pdf, "Remediation")
    _table(
        pdf,
        cmap,
        ("When", "Who", "What", "Why"),
        [(w.when(r, e.at), w.actor(e.actor), e.summary, e.reason or "—") for e in r.remediation],
        (20, 20, 40, 26),
    )

    _heading(pdf, "Timeline")
    _table(
        pdf,
        cmap,
        ("#", "When", "Who", "What", "Why"),
        [
            (str(e.seq), w.when(r, e.at), w.actor(e.actor), e.summary, e.reason or "—")
            for e in r.timeline
        ],
        (7, 19, 20, 38, 22),
    )

    _heading(pdf, "Verification")
    pdf.set_font(SANS, "", 9)
    pdf.set_text_color(*INK)
    _para(pdf, 4.8, cmap(w.verification_text(r, export_name)))
    if r.anchors is not None:
        pdf.ln(2)
        _keep(pdf, 40)
        pdf.set_font(MONO, "", 7)
        pdf.set_fill_color(*HEAD_FILL)
        _para(pdf, 4, cmap(w.verify_command(r, export_name)), fill=True, padding=2)
        pdf.ln(2)
        pdf.set_font(SANS, "", 8.5)
        _para(pdf, 4.5, f"First event #{r.anchors.first_seq} follows:")
        pdf.set_font(MONO, "", 7.5)
        _para(pdf, 4.5, r.anchors.first_prev_hash)
        pdf.set_font(SANS, "", 8.5)
        _para(pdf, 4.5, f"Last event #{r.anchors.last_seq} has the hash:")
        pdf.set_font(MONO, "", 7.5)
        _para(pdf, 4.5, r.anchors.last_hash)
        pdf.ln(2)
        _table(
            pdf,
            cmap,
            ("#", "When", "Event", "Hash"),
            [(str(e.seq), w.when(r, e.at), w.action(e.action), e.hash) for e in r.timeline],
            (7, 19, 22, 72),
            mono_last=True,
        )
    return bytes(pdf.output())


class _Printable:
    """Text with only the characters the fonts can draw (others become "?")."""

    def __init__(self, pdf: FPDF) -> None:
        font = pdf.fonts[SANS.lower()]
        assert isinstance(font, TTFFont)
        self.known: set[int] = set(font.cmap)

    def __call__(self, text: str) -> str:
        known = self.known
        return "".join(c if ord(c) in known or c == "\n" else "?" for c in text)


def _para(pdf: FPDF, height: float, text: str, *, fill: bool = False, padding: int = 0) -> None:
    """A paragraph across the page; the next one starts below it at the left margin."""
    pdf.multi_cell(
        0, height, text, fill=fill, padding=padding, align="L", new_x="LMARGIN", new_y="NEXT"
    )


def _keep(pdf: FPDF, height: float) -> None:
    """Start a new page unless `height` mm still fit: no heading or box left alone at a foot."""
    if pdf.get_y() + height > pdf.page_break_trigger:
        pdf.add_page()


def _heading(pdf: FPDF, text: str) -> None:
    _keep(pdf, 40)
    pdf.ln(3)
    pdf.set_font(SANS, "B", 12.5)
    pdf.set_text_color(*INK)
    pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(*RULE)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.ln(2)


def _subheading(pdf: FPDF, text: str) -> None:
    pdf.set_font(SANS, "B", 10)
    pdf.set_text_color(*INK)
    pdf.cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")


def _table(
    pdf: FPDF,
    cmap: _Printable,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    widths: Sequence[float],
    *,
    mono_last: bool = False,
) -> None:
    pdf.set_text_color(*INK)
    if not rows:
        pdf.set_font(SANS, "", 9)
        pdf.set_text_color(*MUTED)
        pdf.cell(0, 6, "None in this window.", new_x="LMARGIN", new_y="NEXT")
        return
    pdf.set_font(SANS, "", 8)
    pdf.set_draw_color(*RULE)
    with pdf.table(
        col_widths=tuple(widths),
        headings_style=FontFace(emphasis="BOLD", fill_color=HEAD_FILL),
        line_height=4.2,
        text_align="LEFT",
        borders_layout="HORIZONTAL_LINES",
        padding=1,
    ) as table:
        table.row(headers)
        for cells in rows:
            row = table.row()
            for index, cell in enumerate(cells):
                last = mono_last and index == len(cells) - 1
                row.cell(cmap(cell), style=FontFace(family=MONO, size_pt=6.5) if last else None)
    pdf.ln(1)

"""One entry for every surface: a gathered report in the format asked for, with its file name
and media type. Rendering a PDF takes a CPU for a moment, so servers run it in a thread."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from trame_bot.services.reports import ReportBundle, ReportFormat

MEDIA_TYPES = {
    ReportFormat.PDF: "application/pdf",
    ReportFormat.MARKDOWN: "text/markdown; charset=utf-8",
    ReportFormat.JSONL: "application/x-ndjson",
}


@dataclass(frozen=True)
class ReportFile:
    name: str
    media_type: str
    content: bytes


def export_file(bundle: ReportBundle) -> ReportFile:
    """The JSON Lines export that goes beside the report."""
    return ReportFile(
        f"{bundle.base_name}.jsonl", MEDIA_TYPES[ReportFormat.JSONL], bundle.export.encode()
    )


def render(bundle: ReportBundle, fmt: ReportFormat, export_name: str | None = None) -> ReportFile:
    """`export_name` is what the verification block calls the export beside the report."""
    if fmt is ReportFormat.JSONL:
        return export_file(bundle)
    beside = export_name or export_file(bundle).name
    # Imported here: fpdf2 and matplotlib weigh tens of MB, and every server and CLI process
    # imports this module, while few ever render a report.
    if fmt is ReportFormat.PDF:
        from trame_bot.reports.pdf import render_pdf

        content = render_pdf(bundle.report, beside)
    else:
        from trame_bot.reports.markdown import render_markdown

        content = render_markdown(bundle.report, beside).encode()
    return ReportFile(f"{bundle.base_name}.{fmt.value}", MEDIA_TYPES[fmt], content)


async def rendered(
    bundle: ReportBundle, fmt: ReportFormat, export_name: str | None = None
) -> ReportFile:
    return await asyncio.to_thread(render, bundle, fmt, export_name)

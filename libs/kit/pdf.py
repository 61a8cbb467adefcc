"""PDF documents set in an embedded CJK font, with the few parts reports are made of: headings,
paragraphs, ruled tables and horizontal bar charts, a running footer and an optional watermark.

fpdf2 draws them: it embeds OpenType fonts with CFF outlines, such as Noto CJK from Debian's
fonts-noto-cjk, which ReportLab cannot. Nothing here is read from settings: callers pass the font
they found with `find_font`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF

from kit.errors import ServiceUnavailable

FONT_CANDIDATES = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc"),
)
TRADITIONAL_CHINESE_FACE = 3
"""The face of a Noto CJK collection drawn for traditional Chinese (JP, KR, SC, TC, HK)."""
BAR = (46, 110, 180)
TARGET = (200, 60, 40)


class FontMissing(ServiceUnavailable):
    """No CJK font to set a document in."""


def find_font(configured: Path | None, *, setting: str) -> Path:
    """The font file to embed: the configured one, else the first installed candidate; a 503
    problem naming `setting` when there is none."""
    for candidate in (configured,) if configured else FONT_CANDIDATES:
        if candidate and candidate.is_file():
            return candidate
    raise FontMissing(
        "No CJK font is installed to set the document in: install Debian's fonts-noto-cjk or"
        f" name an OpenType or TrueType font in {setting}.",
        headers={"Retry-After": "3600"},
    )


def number(value: Any, digits: int = 2) -> str:
    """A figure as a table shows it: at most `digits` decimals, no trailing zeros, — for none."""
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return str(int(value)) if isinstance(value, int | float) else str(value)


class Document(FPDF):
    """An A4 document in one CJK font, dated by the caller so that its bytes are reproducible."""

    def __init__(
        self,
        font: Path,
        *,
        footer_text: str,
        created_at: datetime,
        watermark: str | None = None,
        page_label: str = "第 {page} 頁",
        legend: str = "",
    ) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        face = TRADITIONAL_CHINESE_FACE if font.suffix.lower() == ".ttc" else 0
        self.add_font("cjk", fname=str(font), collection_font_number=face)
        self.set_font("cjk", size=10)
        self.set_auto_page_break(auto=True, margin=18)
        self.watermark = watermark
        self.footer_text = footer_text
        self.page_label = page_label
        self.legend = legend
        self.set_creation_date(created_at)
        self.set_margins(18, 18, 18)

    def header(self) -> None:
        if not self.watermark:
            return
        with self.local_context(text_color=(225, 225, 225)):
            self.set_font("cjk", size=60)
            with self.rotation(angle=35, x=self.w / 2, y=self.h / 2):
                self.text(x=self.w / 2 - 65, y=self.h / 2, text=self.watermark)
        self.set_font("cjk", size=10)

    def footer(self) -> None:
        self.set_y(-12)
        with self.local_context(text_color=(110, 110, 110)):
            self.set_font("cjk", size=8)
            self.cell(
                0,
                5,
                f"{self.footer_text}    {self.page_label.format(page=self.page_no())}",
                align="C",
            )
        self.set_font("cjk", size=10)

    def heading(self, text: str, size: float = 13) -> None:
        self.ln(3)
        self.set_font("cjk", size=size)
        self.multi_cell(0, size * 0.55, text)
        self.set_font("cjk", size=10)
        self.ln(1)

    def paragraph(self, text: str) -> None:
        self.multi_cell(0, 5.5, text)
        self.ln(1)

    def grid(
        self, widths: Sequence[float], header: Sequence[str], rows: Iterable[Sequence[str]]
    ) -> None:
        with self.local_context(fill_color=(232, 238, 246)):
            for width, text in zip(widths, header, strict=True):
                self.cell(width, 7, text, border=1, align="C", fill=True)
            self.ln()
        for row in rows:
            if self.will_page_break(6.5):
                self.add_page()
            for width, text in zip(widths, row, strict=True):
                self.cell(width, 6.5, text, border=1, align="C")
            self.ln()

    def bar_chart(self, title: str, bars: Sequence[tuple[str, float | None, float | None]]) -> None:
        """One horizontal bar per county: its actual, with its target as a red tick."""
        height = 5.0 + 5.5 * len(bars) + 8
        if self.will_page_break(height):
            self.add_page()
        self.set_font("cjk", size=10)
        self.cell(0, 6, title)
        self.ln()
        left, width = self.l_margin + 28, self.epw - 28 - 22
        scale = max([abs(v) for _, a, t in bars for v in (a, t) if v is not None], default=0.0)
        scale = scale or 1.0
        top = self.get_y()
        self.set_font("cjk", size=8)
        for index, (label, actual, target) in enumerate(bars):
            y = top + index * 5.5
            self.set_xy(self.l_margin, y)
            self.cell(27, 4.5, label, align="R")
            if actual is not None:
                with self.local_context(fill_color=BAR):
                    self.rect(left, y + 0.5, max(width * abs(actual) / scale, 0.3), 3.5, style="F")
            if target is not None:
                x = left + width * abs(target) / scale
                with self.local_context(draw_color=TARGET, line_width=0.6):
                    self.line(x, y, x, y + 4.5)
            self.set_xy(left + width + 1, y)
            self.cell(21, 4.5, f"{number(actual)} / {number(target)}")
        self.set_xy(self.l_margin, top + 5.5 * len(bars) + 1)
        with self.local_context(text_color=(110, 110, 110)):
            self.cell(0, 4, self.legend)
        self.set_font("cjk", size=10)
        self.ln(7)


def plain_pdf(lines: Sequence[str]) -> bytes:
    """A valid one-page PDF showing `lines` (ASCII) in 11-point Helvetica, written by hand with
    a correct cross-reference table: a few hundred bytes, and no font to find."""
    text = " ".join(f"({_escape(line)}) Tj 0 -16 Td" for line in lines)
    stream = f"BT /F1 11 Tf 56 780 Td {text} ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _escape(line: str) -> str:
    ascii_only = line.encode("ascii", "replace").decode("ascii")
    return ascii_only.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

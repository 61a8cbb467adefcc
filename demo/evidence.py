"""The demo counties' evidence files and the review the city's assessment office gives them.

Each reported value arrives with one small PDF, written here by hand (one page, Helvetica,
a correct cross-reference table: a few hundred bytes, no dependency). After the year is
published, three counties send a corrected figure: the office returns two with its comment
and has not yet looked at the third, so the worklists show every state.
"""

from __future__ import annotations

from dataclasses import dataclass


def minimal_pdf(lines: list[str]) -> bytes:
    """A valid one-page PDF showing `lines` (ASCII) in 11-point Helvetica."""
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


def evidence_file(value: dict[str, object], county_name: str) -> tuple[str, bytes]:
    """The file name (Chinese, as a county office names it) and PDF of a reported value."""
    year, indicator = value["year"], value["indicator"]
    content = minimal_pdf(
        [
            f"Evidence for reported value {indicator}",
            f"County {value['county_code']}, year {year}",
            f"Reported figure: {value['value']}",
            f"Measured on {value.get('measured_on') or f'{year}-12-31'}",
        ]
    )
    return f"{county_name}{year}年{indicator}證明材料.pdf", content


@dataclass(frozen=True)
class Correction:
    """A figure a county corrects after publication, and what the office does with it."""

    county_code: str
    indicator: str
    value: float
    comment: str | None
    """The office's comment when it returns the correction; None: still pending review."""


CORRECTIONS = (
    Correction(
        "320305",
        "industrial_standard_coverage",
        0.99,
        "覆蓋率較原報數據提高過多，請附企業產品標準備案清單後重報。",
    ),
    Correction(
        "320382",
        "agri_standardization_trainees",
        260,
        "培訓人次與簽到表不符，請核實後重報。",
    ),
    Correction("320321", "agricultural_standard_coverage", 0.93, None),
)

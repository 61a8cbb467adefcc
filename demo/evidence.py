"""The demo counties' evidence files and the review the city's assessment office gives them.

Each reported value arrives with one small PDF (`kit.pdf.plain_pdf`: one page, Helvetica, a
few hundred bytes). After the year is
published, three counties send a corrected figure: the office returns two with its comment
and has not yet looked at the third, so the worklists show every state.
"""

from __future__ import annotations

from dataclasses import dataclass

from kit.pdf import plain_pdf


def evidence_file(value: dict[str, object], county_name: str) -> tuple[str, bytes]:
    """The file name (Chinese, as a county office names it) and PDF of a reported value."""
    year, indicator = value["year"], value["indicator"]
    content = plain_pdf(
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

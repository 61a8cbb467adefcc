from datetime import UTC, datetime
from pathlib import Path

import pypdfium2
import pytest

from kit.pdf import FONT_CANDIDATES, Document, FontMissing, find_font

needs_font = pytest.mark.skipif(
    not any(font.is_file() for font in FONT_CANDIDATES),
    reason="no CJK font installed (Debian: fonts-noto-cjk)",
)
DAY = datetime(2008, 1, 20, tzinfo=UTC)


def _document(watermark: str | None = None) -> bytes:
    pdf = Document(
        find_font(None, setting="FONT"), footer_text="通報", created_at=DAY, watermark=watermark
    )
    pdf.add_page()
    pdf.heading("抽查結果公告")
    pdf.grid((40, 40), ("企業", "結果"), [("徐州電纜有限公司", "合格")])
    pdf.bar_chart("合格率", [("銅山縣", 0.95, 0.9), ("沛縣", None, 0.9)])
    return bytes(pdf.output())


def _text(pdf: bytes) -> str:
    return "\n".join(p.get_textpage().get_text_range() for p in pypdfium2.PdfDocument(pdf))


@needs_font
def test_chinese_text_is_embedded_and_reads_back() -> None:
    text = _text(_document())
    for words in ("抽查結果公告", "徐州電纜有限公司", "合格", "銅山縣", "0.95 / 0.9", "第 1 頁"):
        assert words in text


@needs_font
def test_the_same_document_and_date_give_the_same_bytes() -> None:
    assert _document() == _document()


@needs_font
def test_a_watermark_is_drawn_on_every_page() -> None:
    assert "草稿 DRAFT" in _text(_document(watermark="草稿 DRAFT"))


def test_a_missing_font_is_a_503_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(FontMissing) as missing:
        find_font(tmp_path / "none.ttc", setting="ASSESSMENT_REPORT_FONT")
    assert missing.value.status == 503
    assert "ASSESSMENT_REPORT_FONT" in missing.value.detail


@needs_font
def test_a_chart_whose_figures_are_all_zero_draws_empty_bars() -> None:
    pdf = Document(find_font(None, setting="FONT"), footer_text="通報", created_at=DAY)
    pdf.add_page()
    pdf.bar_chart("特種設備定期檢驗率", [("銅山縣", 0.0, 0.0), ("沛縣", None, 0)])
    assert "0 / 0" in _text(bytes(pdf.output()))

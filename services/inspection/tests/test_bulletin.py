"""The bulletin of a plan and level: only checks whose bulletin day has come, every enterprise,
product, result and nonconforming item of them, as PDF and as a workbook."""

import io
from datetime import timedelta

import pypdfium2
import pytest
import python_calamine

from kit.pdf import FONT_CANDIDATES
from kit.testing import Harness

from .support import TODAY, credit_code, spot_check

BULLETIN = "/api/v1/spot-checks/bulletin"
needs_font = pytest.mark.skipif(
    not any(font.is_file() for font in FONT_CANDIDATES),
    reason="no CJK font installed (Debian: fonts-noto-cjk)",
)


async def _load(service: Harness) -> None:
    client = service.client()
    bodies = [
        spot_check(),
        spot_check(
            sample_code="S-0002",
            enterprise_credit_code=credit_code(2),
            enterprise_name="沛縣某某電纜廠",
            county_code="320322",
            product_name="電線電纜",
            result="pass",
        ),
        spot_check(
            sample_code="S-0003",
            enterprise_credit_code=credit_code(3),
            enterprise_name="尚未公告的企業",
            published_on=(TODAY + timedelta(days=20)).isoformat(),
        ),
        spot_check(
            sample_code="S-0004",
            plan_code="2024-SJ-09",
            level="provincial",
            enterprise_credit_code=credit_code(4),
            enterprise_name="另一計劃的企業",
        ),
    ]
    for body in bodies:
        created = await client.post("/api/v1/spot-checks", json=body)
        assert created.status_code == 201, created.text


@needs_font
async def test_the_bulletin_lists_what_has_been_published_of_one_plan(service: Harness) -> None:
    await _load(service)
    answer = await service.client().get(
        f"{BULLETIN}.pdf", params={"plan_code": "2024-GJ-01", "level": "national"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    text = "\n".join(
        page.get_textpage().get_text_range() for page in pypdfium2.PdfDocument(answer.content)
    )
    assert "國家監督抽查結果公告（2024-GJ-01）" in text
    for words in (
        "徐州市某某食品有限公司",
        "速凍水餃",
        "不合格",
        "鉛含量",
        "沛縣某某電纜廠",
        "合格",
    ):
        assert words in text
    assert "共抽查 2 批次，合格 1 批次" in text
    assert "尚未公告的企業" not in text
    assert "另一計劃的企業" not in text
    again = await service.client().get(
        f"{BULLETIN}.pdf", params={"plan_code": "2024-GJ-01", "level": "national"}
    )
    assert again.content == answer.content


async def test_the_bulletin_as_a_workbook(service: Harness) -> None:
    await _load(service)
    answer = await service.client().get(
        f"{BULLETIN}.xlsx", params={"plan_code": "2024-GJ-01", "level": "national"}
    )
    assert answer.status_code == 200, answer.text
    book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(answer.content))
    rows = book.get_sheet_by_name("抽查結果").to_python()
    assert rows[0][:7] == [
        "序號",
        "縣（市、區）",
        "企業名稱",
        "產品名稱",
        "樣品編號",
        "檢驗機構",
        "結果",
    ]
    assert sorted(row[2] for row in rows[1:]) == sorted(
        ["徐州市某某食品有限公司", "沛縣某某電纜廠"]
    )


async def test_a_bulletin_names_its_plan_and_level(service: Harness) -> None:
    missing = await service.client().get(f"{BULLETIN}.xlsx", params={"level": "national"})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "plan_code"
    empty = await service.client().get(
        f"{BULLETIN}.xlsx", params={"plan_code": "NONE", "level": "national"}
    )
    assert empty.status_code == 404

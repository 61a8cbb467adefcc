"""The demo year's target set: `config/target_sets/<year>.json` when present, else the seed's.

The seed's set mirrors the plan's wording (ARCHITECTURE.md): city-wide targets shared out
between the counties and districts, so that the county allocations of an additive count add up
to the city figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROVINCIAL_PASS_RATE_KEY = "provincial_spot_check_pass_rate"  # noqa: S105


def _alloc(figures: dict[str, float]) -> dict[str, dict[str, float]]:
    return {code: {"target": value} for code, value in figures.items()}


def _brand(
    key: str,
    name: str,
    tier: str,
    comparator: str,
    target: float,
    weight: float,
    allocations: dict[str, float],
    **extra: Any,
) -> dict[str, Any]:
    kind = "new_awards" if key.startswith("new_") else "in_force"
    return {
        "key": key,
        "name": name,
        "source": "brands",
        "measure": {"kind": kind, "tier": tier},
        "comparator": comparator,
        "target": target,
        "weight": weight,
        "allocations": _alloc(allocations),
        **extra,
    }


def _reported(
    key: str,
    name: str,
    unit: str,
    comparator: str,
    weight: float,
    target: float | None = None,
    allocations: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    indicator: dict[str, Any] = {
        "key": key,
        "name": name,
        "source": "reported",
        "measure": {"kind": "reported_value", "key": key, "unit": unit},
        "comparator": comparator,
        "weight": weight,
        "allocations": allocations or {},
        **extra,
    }
    if target is not None:
        indicator["target"] = target
    return indicator


def seed_target_set() -> dict[str, Any]:
    """The plan's targets as a target-set document (the body of `PUT /target-sets/{year}`)."""
    indicators = [
        _brand(
            "new_china_famous_brands",
            "新增中國名牌產品",
            "china_famous",
            "at_least",
            2,
            6,
            {"320323": 1, "320382": 1},
        ),
        _brand(
            "new_inspection_exempt_products",
            "新增國家免檢產品",
            "national_inspection_exempt",
            "at_least",
            8,
            6,
            {
                "320302": 1,
                "320311": 1,
                "320321": 1,
                "320322": 1,
                "320323": 2,
                "320381": 1,
                "320382": 1,
            },
        ),
        _brand(
            "new_provincial_famous_brands",
            "新增江蘇名牌產品",
            "provincial_famous",
            "about",
            15,
            8,
            {
                "320302": 2,
                "320303": 1,
                "320304": 1,
                "320305": 1,
                "320311": 2,
                "320321": 1,
                "320322": 1,
                "320323": 2,
                "320324": 1,
                "320381": 1,
                "320382": 2,
            },
            tolerance=3,
        ),
        _brand(
            "city_famous_brands_in_force",
            "市級名牌產品總數",
            "city_famous",
            "about",
            150,
            8,
            {
                "320302": 18,
                "320303": 15,
                "320304": 8,
                "320305": 9,
                "320311": 17,
                "320321": 12,
                "320322": 13,
                "320323": 20,
                "320324": 10,
                "320381": 12,
                "320382": 16,
            },
            tolerance=10,
        ),
        {
            "key": "international_standard_share",
            "name": "名牌產品按國際標準組織生產的比例",
            "source": "brands",
            "measure": {"kind": "international_share"},
            "comparator": "at_least",
            "target": 0.5,
            "weight": 8,
            "allocations": {},
        },
        {
            "key": "new_certified_enterprises",
            "name": "新增通過認證企業",
            "source": "certificates",
            "measure": {"kind": "new_certified_enterprises"},
            "comparator": "at_least",
            "target": 30,
            "weight": 12,
            "allocations": _alloc(
                {
                    "320302": 3,
                    "320303": 3,
                    "320304": 2,
                    "320305": 2,
                    "320311": 3,
                    "320321": 2,
                    "320322": 3,
                    "320323": 4,
                    "320324": 2,
                    "320381": 2,
                    "320382": 4,
                }
            ),
        },
        {
            "key": "spot_check_pass_rate",
            "name": "國家和省監督抽查合格率",
            "source": "spot_checks",
            "measure": {"kind": "pass_rate", "levels": ["national", "provincial"]},
            "comparator": "above_reference",
            "reference": PROVINCIAL_PASS_RATE_KEY,
            "weight": 12,
            "allocations": {},
        },
        _reported(
            "industrial_standard_coverage", "工業產品標準覆蓋率", "rate", "at_least", 8, target=0.95
        ),
        _reported(
            "agricultural_standard_coverage",
            "主導農產品標準覆蓋率",
            "rate",
            "at_least",
            6,
            target=0.90,
        ),
        _reported(
            "provincial_agri_local_standards",
            "省級農業地方標準",
            "count",
            "at_least",
            4,
            target=10,
            allocations=_alloc(
                {"320321": 2, "320322": 2, "320323": 2, "320324": 1, "320381": 1, "320382": 2}
            ),
        ),
        _reported(
            "city_agri_local_standards",
            "市級農業地方標準",
            "count",
            "at_least",
            4,
            target=10,
            allocations=_alloc(
                {"320321": 2, "320322": 2, "320323": 2, "320324": 1, "320381": 1, "320382": 2}
            ),
        ),
        _reported(
            "provincial_agri_demo_zones",
            "新建省級農業標準化示範區",
            "count",
            "at_least",
            4,
            target=3,
            allocations=_alloc({"320321": 1, "320323": 1, "320382": 1}),
        ),
        _reported(
            "provincial_service_local_standards",
            "省級服務業地方標準",
            "count",
            "at_least",
            3,
            target=2,
            allocations=_alloc({"320302": 1, "320311": 1}),
        ),
        _reported(
            "agri_standardization_trainees",
            "農業標準化培訓人次",
            "count",
            "at_least",
            4,
            target=200,
            allocations=_alloc(
                {"320321": 35, "320322": 35, "320323": 40, "320324": 30, "320381": 30, "320382": 30}
            ),
        ),
        _reported(
            "quality_county_acceptance",
            "質量強縣通過省級驗收",
            "flag",
            "milestone",
            3,
            allocations={"320323": {}},
        ),
        _reported("major_quality_incidents", "重大質量安全事故", "count", "zero", 4, veto=True),
    ]
    return {
        "indicators": indicators,
        "reason": "質量振興年度目標 (the demo city's plan for the year)",
    }


def load_target_set(year: int, config_dir: Path) -> dict[str, Any]:
    """The year's target set from configuration, or the seed's when none is configured."""
    path = config_dir / "target_sets" / f"{year}.json"
    if path.exists():
        with path.open(encoding="utf-8") as handle:
            document: dict[str, Any] = json.load(handle)
        return document
    return seed_target_set()

"""Small target sets and `/stats` bodies for the assessment tests."""

from collections.abc import Iterable
from typing import Any

import httpx

from kit.pdf import plain_pdf
from kit.testing import Harness

TONGSHAN, PIZHOU, GULOU = "320323", "320382", "320302"


def small_target_set(**overrides: Any) -> dict[str, Any]:
    """Five indicators: one per data service, two reported (one a veto)."""
    body: dict[str, Any] = {
        "indicators": [
            {
                "key": "new_china_famous_brands",
                "name": "新增中國名牌產品2個以上",
                "source": "brands",
                "measure": {"kind": "new_awards", "tier": "china_famous"},
                "comparator": "at_least",
                "target": 2,
                "weight": 20,
                "allocations": {TONGSHAN: {"target": 1}, PIZHOU: {"target": 1}},
            },
            {
                "key": "new_certified_enterprises",
                "name": "新增通過認證企業",
                "source": "certificates",
                "measure": {"kind": "new_certified_enterprises"},
                "comparator": "at_least",
                "target": 3,
                "weight": 20,
                "allocations": {TONGSHAN: {"target": 2}, PIZHOU: {"target": 1}},
            },
            {
                "key": "spot_check_pass_rate",
                "name": "合格率高于全省平均水平",
                "source": "spot_checks",
                "measure": {"kind": "pass_rate", "levels": ["national", "provincial"]},
                "comparator": "above_reference",
                "reference": "provincial_spot_check_pass_rate",
                "weight": 30,
            },
            {
                "key": "industrial_standard_coverage",
                "name": "工業產品標準覆蓋率95%以上",
                "source": "reported",
                "measure": {"kind": "reported_value", "unit": "rate"},
                "comparator": "at_least",
                "target": 0.95,
                "weight": 20,
            },
            {
                "key": "major_quality_incidents",
                "name": "不發生重大質量事故",
                "source": "reported",
                "measure": {"kind": "reported_value", "unit": "count"},
                "comparator": "zero",
                "weight": 10,
                "veto": True,
            },
        ]
    }
    body.update(overrides)
    return body


def brand_stats(groups: list[tuple[str, str, int, int, int]]) -> dict[str, Any]:
    """`groups` of (county, tier, new_awards, in_force, in_force_international)."""
    rows: list[dict[str, Any]] = [
        {"county_code": c, "tier": t, "new_awards": n, "in_force": f, "in_force_international": i}
        for c, t, n, f, i in groups
    ]
    by_county: dict[str, dict[str, Any]] = {}
    by_tier: dict[str, dict[str, Any]] = {}
    totals = {"new_awards": 0, "in_force": 0, "in_force_international": 0}
    for row in rows:
        for key, bucket in ((row["county_code"], by_county), (row["tier"], by_tier)):
            entry = bucket.setdefault(
                key, {"new_awards": 0, "in_force": 0, "in_force_international": 0}
            )
            for name in totals:
                entry[name] += row[name]
        for name in totals:
            totals[name] += row[name]
    return {
        "groups": rows,
        "by_county": [{"county_code": k, **v} for k, v in by_county.items()],
        "by_tier": [{"tier": k, **v} for k, v in by_tier.items()],
        "totals": totals,
    }


def certificate_stats(counts: dict[str, int], total: int | None = None) -> dict[str, Any]:
    return {
        "families": ["environment", "quality"],
        "by_county": [
            {
                "county_code": c,
                "new_certified_enterprises": n,
                "in_force": n,
                "in_force_by_family": {},
            }
            for c, n in counts.items()
        ],
        "totals": {"new_certified_enterprises": sum(counts.values()) if total is None else total},
    }


def spot_check_stats(counts: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """`counts` of county → (checked, passed)."""
    checked = sum(c for c, _ in counts.values())
    passed = sum(p for _, p in counts.values())
    return {
        "levels": ["national", "provincial"],
        "groups": [],
        "by_category": [],
        "by_county": [
            {
                "county_code": k,
                "checked": c,
                "passed": p,
                "pass_rate": round(p / c, 4) if c else None,
            }
            for k, (c, p) in counts.items()
        ],
        "totals": {
            "checked": checked,
            "passed": passed,
            "pass_rate": round(passed / checked, 4) if checked else None,
        },
    }


def reported(
    county: str, indicator: str, value: float, year: int = 2007, **extra: Any
) -> dict[str, Any]:
    return {
        "county_code": county,
        "year": year,
        "indicator": indicator,
        "value": value,
        "evidence": {"document": f"{county}-{indicator}.pdf", "text": "縣質監局年度報告"},
        "reported_by": f"{county} 質監局",
        **extra,
    }


def reference(value: float) -> dict[str, Any]:
    return {"value": value, "source": "江蘇省質量技術監督局通報", "published_on": "2008-01-20"}


async def accepted(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """Submit a value and accept it (the client holds assessments:review): it counts."""
    submitted = await client.post("/api/v1/reported-values", json=body)
    assert submitted.status_code == 201, submitted.text
    decision = await client.post(
        f"/api/v1/reported-values/{submitted.json()['id']}/status",
        json={"state": "accepted"},
        headers={"If-Match": submitted.headers["ETag"]},
    )
    assert decision.status_code == 200, decision.text
    value: dict[str, Any] = decision.json()
    return value


def bound_client(
    service: Harness,
    counties: Iterable[str],
    scopes: Iterable[str] = ("assessments:read", "assessments:write"),
    *,
    client_id: str = "county-client",
) -> httpx.AsyncClient:
    """A client bound to `counties`, as the gateway mints its token."""
    token = service.tokens.minter.mint(
        audience=service.spec.name,
        client_id=client_id,
        client_name=client_id,
        scopes=set(scopes),
        county_codes=frozenset(counties),
    )
    client = service.client(authenticated=False)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def pdf_bytes(text: str = "evidence") -> bytes:
    """A small, valid one-page PDF showing `text`."""
    return plain_pdf([text])

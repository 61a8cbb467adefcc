"""A confirmed major incident recorded in the inspection service vetoes a county's
commendation, and dismissing it restores the outcome: the assessment against the real
brand registry, certification and inspection services, each a uvicorn process on its own
migrated SQLite database.

Target set for 2007: `industrial_standard_coverage` at least 0.95 (weight 100); the veto
`major_quality_incidents` (zero, weight 0): the county's reported count plus the inspection
service's confirmed major incidents of every kind; `metrology_special_checks`, shown for
information (weight 0, no target).

Every county reports a coverage of 96/100 and no incident, so every county scores 100.00 and
is commended. Then, in 沛縣 320322:
- a major food-safety incident (occurred 2007-08-14) is reported: still commended (only a
  confirmed or closed incident counts);
- it is confirmed (effective 2007-08-20): the veto counts 0 reported + 1 confirmed = 1,
  missed, and 沛縣 is criticized; the explanation names the record (id, kind, occurred_on);
  the other counties stay commended;
- it is dismissed with a reason (effective 2007-11-30): the veto is 0 again and 沛縣 is
  commended.
A metrology check in 沛縣 found 1 of 12 fuel dispensers nonconforming: the informational row
shows 11/12 = 0.916667 and judges nothing.

The other measures of the rest of the plan, each shown for information and read from the
real services' stats, after recording in 沛縣: an elevator last inspected 2006-06-30 (due
2007-06-30: overdue on 31 December) and one inspected 2007-03-01 (due 2008-03-01); a food
production licence; that enterprise's disposition `rectifying`; a geographical-indication
listing approved 2007-06-12; a 市質量管理獎 of 2007. Each counts 1 for 沛縣 and for the city,
0 elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kit.identifiers import credit_code_check_char
from tests.system.assessment_processes import Stack, start_stack

PEI = "320322"
COUNTIES = (
    "320302",
    "320303",
    "320304",
    "320305",
    "320311",
    "320321",
    PEI,
    "320323",
    "320324",
    "320381",
    "320382",
)
STANDINGS = "/api/v1/assessments/2007/standings"
INCIDENT_SCOPES = ("incidents:read", "incidents:write")
AS_OF = {"as_of": "2007-12-31"}


INFORMATIONAL = (
    ("metrology_special_checks", "spot_checks", "metrology_pass_rate"),
    ("special_equipment_overdue", "spot_checks", "special_equipment_overdue"),
    ("licensed_food_producers", "certificates", "licensed_food_producers"),
    ("food_processing_rectification", "food_dispositions", "food_rectification_open"),
    ("new_gi_products", "brands", "new_gi_products"),
    ("quality_awards_won", "awards", "awards_won"),
)


def credit_code(county: str, number: int) -> str:
    first17 = f"91{county}{number:09d}"
    return first17 + credit_code_check_char(first17)


def target_set() -> dict[str, Any]:
    return {
        "rules": {"scoring": "all_or_nothing"},
        "indicators": [
            {
                "key": "industrial_standard_coverage",
                "name": "工業產品標準覆蓋率95%以上",
                "source": "reported",
                "measure": {"kind": "reported_value", "unit": "rate"},
                "comparator": "at_least",
                "target": 0.95,
                "weight": 100,
            },
            {
                "key": "major_quality_incidents",
                "name": "不出現區域性質量問題、食品安全事故、無證生產和重大制假售假案件",
                "source": "reported",
                "measure": {
                    "kind": "reported_value",
                    "unit": "count",
                    "incidents": [
                        "quality_incident",
                        "food_safety_incident",
                        "unlicensed_production",
                        "counterfeiting_case",
                    ],
                },
                "comparator": "zero",
                "weight": 0,
                "veto": True,
            },
            *(
                {
                    "key": key,
                    "name": key,
                    "source": source,
                    "measure": {"kind": kind},
                    "comparator": "informational",
                    "weight": 0,
                }
                for key, source, kind in INFORMATIONAL
            ),
        ],
    }


def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def report(client: httpx.Client, county: str, indicator: str, value: float, **extra: Any) -> None:
    submitted = client.post(
        "/api/v1/reported-values",
        json={
            "county_code": county,
            "year": 2007,
            "indicator": indicator,
            "value": value,
            "evidence": {"document": f"{county}-2007.pdf", "text": "年度報告"},
            "reported_by": f"{county} 質監局",
            **extra,
        },
    )
    created = _ok(submitted, 201)
    _ok(
        client.post(
            f"/api/v1/reported-values/{created['id']}/status",
            json={"state": "accepted"},
            headers={"If-Match": submitted.headers["ETag"]},
        )
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("incident-veto")
    running = start_stack(tmp, deadline_seconds=5.0, timeout_seconds=2.0)
    try:
        with running.client("assessment") as client:
            _ok(client.put("/api/v1/target-sets/2007", json=target_set()), 201)
            for county in COUNTIES:
                report(
                    client,
                    county,
                    "industrial_standard_coverage",
                    0.96,
                    numerator=96,
                    denominator=100,
                )
                report(client, county, "major_quality_incidents", 0)
        with running.client("inspection") as client:
            _ok(
                client.post(
                    "/api/v1/spot-checks",
                    json={
                        "programme": "metrology",
                        "plan_code": "2007-JL-01",
                        "level": "city",
                        "metrology_subject": "fuel_dispenser",
                        "instruments_checked": 12,
                        "instruments_nonconforming": 1,
                        "enterprise_credit_code": credit_code(PEI, 1),
                        "enterprise_name": "沛縣加油站",
                        "county_code": PEI,
                        "sampled_on": "2007-05-10",
                        "published_on": "2007-06-01",
                        "result": "fail",
                        "nonconforming_items": [
                            {
                                "item": "加油機計量誤差",
                                "requirement": "±0.3%",
                                "measured": "-0.52%",
                            }
                        ],
                    },
                ),
                201,
            )
        yield running
    finally:
        running.stop()


def _standing(stack: Stack, county: str) -> dict[str, Any]:
    with stack.client("assessment") as client:
        return _ok(client.get(f"{STANDINGS}/{county}", params=AS_OF))


def _outcomes(stack: Stack) -> dict[str, str]:
    with stack.client("assessment") as client:
        body = _ok(client.get(STANDINGS, params=AS_OF))
    return {s["county_code"]: s["outcome"] for s in body["items"]}


def _row(standing: dict[str, Any], key: str) -> dict[str, Any]:
    found: dict[str, Any] = next(i for i in standing["indicators"] if i["indicator"] == key)
    return found


def _change(client: httpx.Client, incident: dict[str, Any], **body: Any) -> dict[str, Any]:
    current = client.get(f"/api/v1/incidents/{incident['id']}")
    _ok(current)
    return _ok(
        client.post(
            f"/api/v1/incidents/{incident['id']}/status",
            json=body,
            headers={"If-Match": current.headers["ETag"]},
        )
    )


def test_a_confirmed_major_incident_vetoes_and_its_dismissal_restores(stack: Stack) -> None:
    assert set(_outcomes(stack).values()) == {"commended"}
    before = _standing(stack, PEI)
    assert (before["score"], before["outcome"]) == (100.0, "commended")
    metrology = _row(before, "metrology_special_checks")
    assert (metrology["actual"], metrology["status"], metrology["weight"]) == (
        0.916667,
        "informational",
        0.0,
    )
    assert metrology["explanation"]["inputs"]["instruments_checked"] == 12

    with stack.client("inspection", INCIDENT_SCOPES) as client:
        incident = _ok(
            client.post(
                "/api/v1/incidents",
                json={
                    "kind": "food_safety_incident",
                    "county_code": PEI,
                    "occurred_on": "2007-08-14",
                    "reported_on": "2007-08-15",
                    "title": "沛縣某食品廠集體食物中毒",
                    "severity": "major",
                    "severity_criterion": "casualties",
                    "source_system": "市食品安全應急平台",
                    "source_reference": "SPAQ-2007-031",
                },
            ),
            201,
        )
    assert _standing(stack, PEI)["outcome"] == "commended", "reported, not yet confirmed"

    with stack.client("inspection", INCIDENT_SCOPES) as client:
        _change(client, incident, status="confirmed", effective_on="2007-08-20")
    vetoed = _standing(stack, PEI)
    assert (vetoed["score"], vetoed["outcome"]) == (100.0, "criticized")
    assert vetoed["outcome_reason"] == "a veto indicator was missed"
    veto = _row(vetoed, "major_quality_incidents")
    assert (veto["actual"], veto["status"]) == (1.0, "missed")
    figures = veto["explanation"]["inputs"]
    assert figures["value"] == 0
    assert figures["incidents"] == {"food_safety_incident": 1}
    assert figures["incidents_named"] == [
        f"incident {incident['id']} (food_safety_incident, occurred on 2007-08-14)"
    ]
    (record,) = figures["incident_records"]
    assert (record["id"], record["kind"], record["occurred_on"], record["status"]) == (
        incident["id"],
        "food_safety_incident",
        "2007-08-14",
        "confirmed",
    )
    assert veto["provenance"]["incidents"]["records"] == [incident["id"]]
    outcomes = _outcomes(stack)
    assert outcomes.pop(PEI) == "criticized"
    assert set(outcomes.values()) == {"commended"}

    with stack.client("inspection", INCIDENT_SCOPES) as client:
        _change(
            client,
            incident,
            status="dismissed",
            reason="複查認定為個別食源性疾病，不屬區域性食品安全事故",
            effective_on="2007-11-30",
        )
    restored = _standing(stack, PEI)
    assert (restored["score"], restored["outcome"]) == (100.0, "commended")
    veto = _row(restored, "major_quality_incidents")
    assert (veto["actual"], veto["status"]) == (0.0, "met")
    assert veto["explanation"]["inputs"]["incident_records"] == []
    assert set(_outcomes(stack).values()) == {"commended"}


def _record_the_rest_of_the_plan(stack: Stack) -> None:
    maker = {"enterprise_credit_code": credit_code(PEI, 2), "enterprise_name": "沛縣食品廠"}
    with stack.client("inspection") as client:
        for code, inspected, due in (
            ("DT3203220001", "2006-06-30", "2007-06-30"),
            ("DT3203220002", "2007-03-01", "2008-03-01"),
        ):
            _ok(
                client.post(
                    "/api/v1/spot-checks",
                    json={
                        "programme": "special_equipment",
                        "plan_code": "2007-TS-DT",
                        "level": "city",
                        "equipment_code": code,
                        "equipment_kind": "elevator",
                        "next_due_on": due,
                        "major_hazard_source": False,
                        "county_code": PEI,
                        "sampled_on": inspected,
                        "published_on": inspected,
                        "result": "pass",
                        **maker,
                    },
                ),
                201,
            )
    with stack.client("certification") as client:
        _ok(
            client.post(
                "/api/v1/certificates",
                json={
                    "kind": "food_production_licence",
                    "certificate_number": "QS320322010001",
                    "issuing_authority": "徐州市質量技術監督局",
                    "product_categories": ["糕點"],
                    "county_code": PEI,
                    "scope": "糕點生產",
                    "issued_on": "2006-05-01",
                    **maker,
                },
            ),
            201,
        )
        _ok(
            client.post(
                "/api/v1/food-dispositions",
                json={
                    "county_code": PEI,
                    "licence_number": "QS320322010001",
                    "disposition": "rectifying",
                    "decided_on": "2007-03-15",
                    "deadline": "2007-09-30",
                    "reason": "出廠檢驗不符合要求，限期整改",
                    **maker,
                },
            ),
            201,
        )
    with stack.client("brand_registry") as client:
        _ok(
            client.post(
                "/api/v1/brands",
                json={
                    "product_name": "沛縣黿汁狗肉",
                    "brand_name": "黿汁狗肉",
                    "county_code": PEI,
                    "tier": "geographical_indication",
                    "sector": "agriculture",
                    "awarded_on": "2007-06-12",
                    "protected_name": "沛縣黿汁狗肉",
                    "protected_area": [PEI],
                    "approval_authority": "國家質量監督檢驗檢疫總局",
                    "notice_number": "2007年第88號",
                    **maker,
                },
            ),
            201,
        )
        _ok(
            client.post(
                "/api/v1/awards",
                json={
                    "kind": "city_quality_management_award",
                    "level": "city",
                    "year": 2007,
                    "county_code": PEI,
                    "awarded_on": "2007-12-25",
                    **maker,
                },
            ),
            201,
        )


def test_the_rest_of_the_plan_is_read_from_the_real_stats(stack: Stack) -> None:
    _record_the_rest_of_the_plan(stack)
    with stack.client("assessment") as client:
        body = _ok(client.get(STANDINGS, params=AS_OF))
    assert all(v == "ok" for v in body["meta"]["completeness"].values()), body["meta"]
    wanted = [key for key, _, _ in INFORMATIONAL if key != "metrology_special_checks"]
    for standing in body["items"]:
        figures = {key: _row(standing, key) for key in wanted}
        expected = 1.0 if standing["county_code"] == PEI else 0.0
        assert {k: r["actual"] for k, r in figures.items()} == dict.fromkeys(wanted, expected)
        assert {r["status"] for r in figures.values()} == {"informational"}
    city = {key: _row(body["city"], key)["actual"] for key in wanted}
    assert city == dict.fromkeys(wanted, 1.0)
    pei = _standing(stack, PEI)
    overdue = _row(pei, "special_equipment_overdue")["explanation"]["inputs"]
    assert overdue["overdue_equipment_codes"] == ["DT3203220001"]
    assert overdue["items_registered"] == 2
    rectifying = _row(pei, "food_processing_rectification")["explanation"]["inputs"]
    assert (rectifying["rectifying"], rectifying["total"]) == (1, 1)

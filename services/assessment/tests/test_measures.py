"""The measures over the rest of the plan (metrology, special equipment, food licences and
rectification, incidents, geographical-indication products, awards), the veto counting
confirmed major incidents, and indicators shown for information only: computed from
hand-counted `/stats` bodies, then once through the service against the stand-ins."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from assessment.catalogue import Catalogue, validate_target_set
from assessment.schemas import Indicator, Rules, TargetSetCreate
from assessment.service import resolve_rules
from assessment.sources import INCIDENT_RECORDS, Fetched
from assessment.standings import Inputs, compute, explain, queries_for
from kit.testing import Harness

from .builders import TONGSHAN, accepted, reported
from .fakes import FakeDataServices
from .test_verdicts import (
    C1,
    C2,
    D1,
    D2,
    DEFAULTS,
    REGIONS,
    by_county,
    fetched,
    indicator,
    report,
    row,
)

YEAR_END = date(2007, 12, 31)
MID_YEAR = date(2007, 6, 30)


def county_body(rows: dict[str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A `/stats` body of rows per county, the totals summed field by field."""
    totals: dict[str, Any] = {}
    for figures in rows.values():
        for name, value in figures.items():
            if isinstance(value, int):
                totals[name] = totals.get(name, 0) + value
    return {
        "by_county": [{"county_code": c, **figures} for c, figures in rows.items()],
        "totals": totals,
        **extra,
    }


def incident_body(incidents: list[dict[str, Any]]) -> dict[str, Any]:
    """Incident stats as the contract gives them for `incidents` already confirmed and major,
    with the records the assessment adds."""
    rows: dict[str, dict[str, Any]] = {}
    for item in incidents:
        entry = rows.setdefault(
            item["county_code"],
            {"reported": 0, "confirmed": 0, "confirmed_major": 0, "by_kind": {}},
        )
        entry["reported"] += 1
        entry["confirmed"] += 1
        entry["confirmed_major"] += 1
        entry["by_kind"][item["kind"]] = entry["by_kind"].get(item["kind"], 0) + 1
        entry.setdefault("confirmed_major_ids", []).append(item["id"])
    return county_body(rows, **{INCIDENT_RECORDS: incidents})


def standings_of(
    indicators: list[Indicator],
    bodies: dict[str, dict[str, Any]],
    *,
    reported_values: dict[tuple[str, str], dict[str, Any]] | None = None,
    as_of: date = YEAR_END,
) -> dict[str, Any]:
    """Standings from `bodies` by source (`spot_checks?programme=metrology`, `incidents`, …),
    each answering the query of that key."""
    fetches: dict[str, Fetched] = {}
    for query in queries_for(indicators):
        fetches[query.key] = fetched(query.key, query.source.value, bodies[query.key])
    return compute(
        Inputs(
            year=2007,
            as_of=as_of,
            target_set_version=1,
            indicators=indicators,
            rules=resolve_rules(Rules(), DEFAULTS),
            regions=REGIONS,
            fetched=fetches,
            reported=reported_values or {},
        )
    )


def metrology(**fields: Any) -> Indicator:
    return indicator(
        "metrology_special_checks",
        source="spot_checks",
        measure={"kind": "metrology_pass_rate"},
        **({"comparator": "at_least", "target": 0.9, "weight": 10} | fields),
    )


def test_the_metrology_pass_rate_is_instruments_conforming_over_checked() -> None:
    """D1: 40 instruments checked in 12 checks, 2 nonconforming → 38/40 = 0.95, met; C1: 60
    in 20 checks, 9 nonconforming → 51/60 = 0.85, missed; the city adds the instruments up,
    (38 + 51) / 100 = 0.89, not the mean of the counties' rates (0.90)."""
    body = county_body(
        {
            D1: {
                "checked": 12,
                "nonconforming": 2,
                "instruments_checked": 40,
                "instruments_nonconforming": 2,
            },
            C1: {
                "checked": 20,
                "nonconforming": 5,
                "instruments_checked": 60,
                "instruments_nonconforming": 9,
            },
        }
    )
    result = standings_of([metrology()], {"spot_checks?programme=metrology": body})
    counties = by_county(result)
    d1 = row(counties[D1], "metrology_special_checks")
    assert (d1["actual"], d1["status"]) == (0.95, "met")
    assert d1["explanation"]["inputs"] == {
        "checks": 12,
        "checks_nonconforming": 2,
        "instruments_checked": 40,
        "instruments_nonconforming": 2,
        "numerator": 38,
        "denominator": 40,
    }
    c1 = row(counties[C1], "metrology_special_checks")
    assert (c1["actual"], c1["status"]) == (0.85, "missed")
    assert row(counties[D2], "metrology_special_checks")["status"] == "no_data"
    city = row(result["city"], "metrology_special_checks")
    assert city["actual"] == 0.89
    assert city["explanation"]["inputs"]["numerator"] == 89
    assert "instruments_checked" in city["provenance"]["field"]


def overdue(**fields: Any) -> Indicator:
    return indicator(
        "special_equipment_overdue",
        source="spot_checks",
        measure={"kind": "special_equipment_overdue"},
        **({"comparator": "zero", "weight": 10} | fields),
    )


def test_items_overdue_are_at_risk_during_the_year_and_missed_at_its_end() -> None:
    """D1 has 3 of its 25 registered items overdue: at risk on 30 June (they may still be
    inspected), missed on 31 December; C1 has none overdue: met either way."""
    body = county_body(
        {
            D1: {
                "inspected": 30,
                "failed": 2,
                "items_registered": 25,
                "items_overdue": 3,
                "overdue_equipment_codes": ["T1", "T2", "T3"],
            },
            C1: {"inspected": 10, "failed": 0, "items_registered": 9, "items_overdue": 0},
        }
    )
    bodies = {"spot_checks?programme=special_equipment": body}
    mid = by_county(standings_of([overdue()], bodies, as_of=MID_YEAR))
    end = by_county(standings_of([overdue()], bodies))
    d1 = row(mid[D1], "special_equipment_overdue")
    assert (d1["actual"], d1["status"]) == (3.0, "at_risk")
    assert d1["explanation"]["inputs"] == {
        "items_overdue": 3,
        "items_registered": 25,
        "inspected": 30,
        "failed": 2,
        "items_major_hazard_overdue": 0,
        "overdue_equipment_codes": ["T1", "T2", "T3"],
    }
    assert row(end[D1], "special_equipment_overdue")["status"] == "missed"
    assert row(mid[C1], "special_equipment_overdue")["status"] == "met"
    assert row(end[C1], "special_equipment_overdue")["status"] == "met"


def test_licences_rectification_gi_products_and_awards_are_read_from_their_stats() -> None:
    """Each count read from its county's row: 7 licensed food producers in D1; 2 enterprises
    still rectifying in C1 (the campaign not complete) and none in D1; 1 new GI product in C2
    (renewals and other tiers not counted); awards: 3 in D1, of which 1 national quality
    award when the measure chooses that kind."""
    indicators = [
        indicator(
            "licensed_food_producers",
            source="certificates",
            measure={"kind": "licensed_food_producers"},
            comparator="informational",
            weight=0,
        ),
        indicator(
            "food_processing_rectification",
            source="food_dispositions",
            measure={"kind": "food_rectification_open"},
            comparator="zero",
            weight=10,
        ),
        indicator(
            "new_gi_products",
            source="brands",
            measure={"kind": "new_gi_products"},
            comparator="informational",
            weight=0,
        ),
        indicator(
            "awards_won",
            source="awards",
            measure={"kind": "awards_won"},
            comparator="informational",
            weight=0,
        ),
        indicator(
            "national_quality_awards",
            source="awards",
            measure={"kind": "awards_won", "award_kinds": ["national_quality_award"]},
            comparator="informational",
            weight=0,
        ),
    ]
    bodies = {
        "certificates?kind=food_production_licence": county_body(
            {D1: {"licensed_enterprises": 7, "new_licences": 2}}
        ),
        "food_dispositions": county_body(
            {
                D1: {"supported": 4, "rectifying": 0, "closed": 1, "total": 5},
                C1: {"supported": 1, "rectifying": 2, "closed": 0, "total": 3},
            }
        ),
        "brands": {
            "groups": [
                {"county_code": C2, "tier": "geographical_indication", "new_awards": 1},
                {"county_code": C2, "tier": "city_famous", "new_awards": 4},
            ],
            "by_county": [{"county_code": C2, "new_awards": 5}],
            "by_tier": [
                {"tier": "geographical_indication", "new_awards": 1},
                {"tier": "city_famous", "new_awards": 4},
            ],
            "totals": {"new_awards": 5},
        },
        "awards": county_body(
            {
                D1: {
                    "awards": 3,
                    "by_kind": {"national_quality_award": 1, "city_quality_management_award": 2},
                    "by_level": {"national": 1, "city": 2},
                }
            }
        ),
    }
    result = standings_of(indicators, bodies)
    counties = by_county(result)
    actual = {
        (code, key): row(counties[code], key)["actual"]
        for code in (D1, C1, C2)
        for key in (
            "licensed_food_producers",
            "food_processing_rectification",
            "new_gi_products",
            "awards_won",
            "national_quality_awards",
        )
    }
    assert actual == {
        (D1, "licensed_food_producers"): 7.0,
        (C1, "licensed_food_producers"): 0.0,
        (C2, "licensed_food_producers"): 0.0,
        (D1, "food_processing_rectification"): 0.0,
        (C1, "food_processing_rectification"): 2.0,
        (C2, "food_processing_rectification"): 0.0,
        (D1, "new_gi_products"): 0.0,
        (C1, "new_gi_products"): 0.0,
        (C2, "new_gi_products"): 1.0,
        (D1, "awards_won"): 3.0,
        (C1, "awards_won"): 0.0,
        (C2, "awards_won"): 0.0,
        (D1, "national_quality_awards"): 1.0,
        (C1, "national_quality_awards"): 0.0,
        (C2, "national_quality_awards"): 0.0,
    }
    assert row(counties[C1], "food_processing_rectification")["status"] == "missed"
    assert row(counties[D1], "food_processing_rectification")["status"] == "met"
    rectifying = row(counties[C1], "food_processing_rectification")
    assert rectifying["explanation"]["inputs"] == {
        "rectifying": 2,
        "supported": 1,
        "closed": 0,
        "total": 3,
    }
    assert rectifying["provenance"]["field"] == f"by_county[county_code={C1}].rectifying"
    city = result["city"]
    assert row(city, "new_gi_products")["actual"] == 1.0
    assert row(city, "food_processing_rectification")["actual"] == 2.0
    assert row(city, "awards_won")["actual"] == 3.0


INCIDENT = {
    "id": "inc_0001",
    "county_code": C2,
    "kind": "food_safety_incident",
    "severity": "major",
    "status": "confirmed",
    "occurred_on": "2007-08-14",
}


def veto() -> Indicator:
    return indicator(
        "major_quality_incidents",
        source="reported",
        measure={
            "kind": "reported_value",
            "unit": "count",
            "incidents": [
                "quality_incident",
                "food_safety_incident",
                "unlicensed_production",
                "counterfeiting_case",
            ],
        },
        comparator="zero",
        weight=0,
        veto=True,
    )


def coverage() -> Indicator:
    return indicator(
        "industrial_standard_coverage",
        source="reported",
        measure={"kind": "reported_value", "unit": "rate"},
        comparator="at_least",
        target=0.95,
        weight=50,
    )


def reports() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (c, key): report(c, key, value)
        for c in (D1, D2, C1, C2)
        for key, value in (("industrial_standard_coverage", 0.97), ("major_quality_incidents", 0))
    }


def test_a_confirmed_major_incident_vetoes_a_county_that_reported_none() -> None:
    """C2 reported no incident, but inspection confirmed a major food-safety incident there:
    the veto counts 0 + 1, C2 is criticized and the explanation names the record; once the
    incident is dismissed (the stats no longer count it) C2 is commended again."""
    vetoed = standings_of(
        [coverage(), veto()], {"incidents": incident_body([INCIDENT])}, reported_values=reports()
    )
    c2 = by_county(vetoed)[C2]
    assert c2["outcome"] == "criticized"
    veto_row = row(c2, "major_quality_incidents")
    assert (veto_row["actual"], veto_row["status"]) == (1.0, "missed")
    figures = veto_row["explanation"]["inputs"]
    assert figures["value"] == 0
    assert figures["incidents"] == {"food_safety_incident": 1}
    assert figures["incident_records"] == [INCIDENT]
    assert figures["incidents_named"] == [
        "incident inc_0001 (food_safety_incident, occurred on 2007-08-14)"
    ]
    assert veto_row["provenance"]["incidents"]["records"] == ["inc_0001"]
    assert by_county(vetoed)[C1]["outcome"] == "commended"
    city = row(vetoed["city"], "major_quality_incidents")
    assert (city["actual"], city["status"]) == (1.0, "missed")
    explained = explain(vetoed, C2)
    assert explained is not None
    assert explained["explanation"]["outcome"]["result"] == "a veto indicator was missed"

    restored = standings_of(
        [coverage(), veto()], {"incidents": incident_body([])}, reported_values=reports()
    )
    c2 = by_county(restored)[C2]
    assert c2["outcome"] == "commended"
    assert row(c2, "major_quality_incidents")["status"] == "met"


def test_the_veto_has_no_data_while_the_incident_stats_are_missing() -> None:
    """The inspection service did not answer: no county's zero can be trusted."""
    indicators = [coverage(), veto()]
    query = queries_for(indicators)[0]
    missing = Fetched(
        key=query.key,
        source="incidents",
        service="inspection",
        query="GET /api/v1/incidents/stats",
        ok=False,
        body=None,
        reason="unreachable: ConnectError",
        fetched_at="2008-01-05T00:00:00+00:00",
        elapsed_ms=1.0,
        attempts=3,
    )
    result = compute(
        Inputs(
            year=2007,
            as_of=YEAR_END,
            target_set_version=1,
            indicators=indicators,
            rules=resolve_rules(Rules(), DEFAULTS),
            regions=REGIONS,
            fetched={query.key: missing},
            reported=reports(),
        )
    )
    veto_row = row(by_county(result)[C1], "major_quality_incidents")
    assert veto_row["status"] == "no_data"
    assert "incidents: unreachable" in veto_row["reason"]


def test_confirmed_major_incidents_of_chosen_kinds() -> None:
    """Only the kinds the measure names count: C2's counterfeiting case, not its quality
    incident."""
    records = [
        INCIDENT | {"id": "inc_1", "kind": "quality_incident"},
        INCIDENT | {"id": "inc_2", "kind": "counterfeiting_case", "occurred_on": "2007-03-01"},
    ]
    counted = indicator(
        "counterfeiting_cases",
        source="incidents",
        measure={"kind": "confirmed_major_incidents", "incidents": ["counterfeiting_case"]},
        comparator="zero",
        weight=10,
    )
    result = standings_of([counted], {"incidents": incident_body(records)})
    c2 = row(by_county(result)[C2], "counterfeiting_cases")
    assert (c2["actual"], c2["status"]) == (1.0, "missed")
    assert c2["explanation"]["inputs"]["named"] == [
        "incident inc_2 (counterfeiting_case, occurred on 2007-03-01)"
    ]


def test_an_informational_indicator_is_shown_and_judges_nothing() -> None:
    """Weight 0, no target: its figure appears for every county and the city with status
    `informational`; scores, statuses, missed counts and outcomes are those without it."""
    body = county_body({D1: {"instruments_checked": 10, "instruments_nonconforming": 9}})
    shown = metrology(comparator="informational", weight=0, target=None)
    bodies = {"spot_checks?programme=metrology": body}
    with_it = standings_of([coverage(), shown], bodies, reported_values=reports())
    without = standings_of([coverage()], bodies, reported_values=reports())
    for code, standing in by_county(with_it).items():
        other = by_county(without)[code]
        for name in ("score", "status", "missed", "outcome", "rank"):
            assert standing[name] == other[name], (code, name)
        figure = row(standing, "metrology_special_checks")
        assert figure["status"] == "informational"
        assert (figure["credit"], figure["contribution"], figure["target"]) == (None, 0.0, None)
    d1 = row(by_county(with_it)[D1], "metrology_special_checks")
    assert d1["actual"] == 0.1
    assert d1["explanation"]["formula"].startswith("shown for information")


CATALOGUE = Catalogue(regions=tuple(REGIONS), rules=DEFAULTS)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"weight": 5}, "indicators[1].weight"),
        ({"target": 0.9}, "indicators[1].target"),
        ({"veto": True}, "indicators[1].veto"),
        ({"allocations": {D1: {}}}, "indicators[1].allocations"),
    ],
)
def test_an_informational_indicator_takes_no_weight_target_veto_or_allocation(
    changes: dict[str, Any], field: str
) -> None:
    shown = {
        "key": "metrology_special_checks",
        "name": "計量專項監督檢查",
        "source": "spot_checks",
        "measure": {"kind": "metrology_pass_rate"},
        "comparator": "informational",
        "weight": 0,
    }
    body = TargetSetCreate.model_validate(
        {"indicators": [coverage().model_dump(exclude_none=True), shown | changes]}
    )
    assert field in {e.field for e in validate_target_set(body, CATALOGUE)}
    clean = TargetSetCreate.model_validate(
        {"indicators": [coverage().model_dump(exclude_none=True), shown]}
    )
    assert validate_target_set(clean, CATALOGUE) == []


def test_incident_kinds_and_award_kinds_belong_to_their_measures() -> None:
    body = TargetSetCreate.model_validate(
        {
            "indicators": [
                coverage().model_dump(exclude_none=True)
                | {"measure": {"kind": "reported_value", "unit": "rate", "incidents": []}},
                {
                    "key": "gi",
                    "name": "地理標志",
                    "source": "awards",
                    "measure": {"kind": "new_gi_products", "award_kinds": ["x"]},
                    "comparator": "informational",
                    "weight": 0,
                },
            ]
        }
    )
    fields = {e.field for e in validate_target_set(body, CATALOGUE)}
    assert fields == {
        "indicators[0].measure.incidents",
        "indicators[1].measure.kind",
        "indicators[1].measure.award_kinds",
    }


def target_set() -> dict[str, Any]:
    return {
        "indicators": [
            coverage().model_dump(mode="json", exclude_none=True),
            veto().model_dump(mode="json", exclude_none=True),
            metrology(comparator="informational", weight=0, target=None).model_dump(
                mode="json", exclude_none=True
            ),
        ]
    }


async def test_the_service_reads_the_incident_records_and_names_them(
    service: Harness, data_services: FakeDataServices
) -> None:
    """Through the service: the incident stats are read from inspection with incidents:read,
    each confirmed major incident from `GET /incidents/{id}`, the metrology stats with
    `programme=metrology`; Tongshan's veto names the record it counts."""
    client = service.client()
    assert (await client.put("/api/v1/target-sets/2007", json=target_set())).status_code == 201
    for key, value in (("industrial_standard_coverage", 0.97), ("major_quality_incidents", 0)):
        await accepted(client, reported(TONGSHAN, key, value))
    record = INCIDENT | {"county_code": TONGSHAN, "description": "not kept"}
    data_services.incidents[record["id"]] = record
    stats = incident_body([record])
    del stats[INCIDENT_RECORDS]
    data_services.bodies["incidents"] = stats
    data_services.bodies["spot_checks?programme=metrology"] = county_body(
        {TONGSHAN: {"instruments_checked": 20, "instruments_nonconforming": 1}}
    )
    response = await client.get(
        f"/api/v1/assessments/2007/standings/{TONGSHAN}", params={"as_of": "2007-12-31"}
    )
    assert response.status_code == 200, response.text
    standing = response.json()
    assert standing["outcome"] == "criticized"
    veto_row = row(standing, "major_quality_incidents")
    assert veto_row["explanation"]["inputs"]["incidents_named"] == [
        "incident inc_0001 (food_safety_incident, occurred on 2007-08-14)"
    ]
    kept = veto_row["explanation"]["inputs"]["incident_records"][0]
    assert "description" not in kept
    assert kept["county_code"] == TONGSHAN
    assert row(standing, "metrology_special_checks")["actual"] == 0.95
    paths = {r.url.path: r for r in data_services.requests}
    assert "/api/v1/incidents/inc_0001" in paths
    assert paths["/api/v1/spot-checks/stats"].url.params["programme"] == "metrology"
    assert paths["/api/v1/incidents/stats"].url.host == "inspection.test"
    scopes = {
        s for c in data_services.claims if c["aud"] == "inspection" for s in c["scope"].split()
    }
    assert "incidents:read" in scopes
    assert standing["meta"]["completeness"]["incidents"] == "ok"


async def test_records_the_incident_stats_carry_are_not_read_again(
    service: Harness, data_services: FakeDataServices
) -> None:
    """The stats name their confirmed major incidents in `confirmed_major_records`: those are
    the records the veto names, and no incident is read one by one."""
    client = service.client()
    assert (await client.put("/api/v1/target-sets/2007", json=target_set())).status_code == 201
    record = INCIDENT | {"county_code": TONGSHAN, "kind_label": "食品安全事故"}
    stats = incident_body([record])
    del stats[INCIDENT_RECORDS]
    stats["confirmed_major_records"] = [record]
    data_services.bodies["incidents"] = stats
    response = await client.get(
        f"/api/v1/assessments/2007/standings/{TONGSHAN}", params={"as_of": "2007-12-31"}
    )
    assert response.status_code == 200, response.text
    figures = row(response.json(), "major_quality_incidents")["explanation"]["inputs"]
    assert figures["incident_records"] == [record]
    assert figures["incidents"] == {"food_safety_incident": 1}
    assert not [r for r in data_services.requests if r.url.path == "/api/v1/incidents/inc_0001"]

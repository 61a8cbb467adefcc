"""Reported values with evidence and corrections; reference values with their source."""

from kit.testing import Harness

from .builders import GULOU, TONGSHAN, accepted, reference, reported, small_target_set


async def _target_set(service: Harness) -> None:
    response = await service.client().put("/api/v1/target-sets/2007", json=small_target_set())
    assert response.status_code == 201


async def test_a_correction_keeps_the_earlier_value(service: Harness) -> None:
    await _target_set(service)
    client = service.client()
    first = await client.post(
        "/api/v1/reported-values", json=reported(TONGSHAN, "industrial_standard_coverage", 0.9)
    )
    assert first.status_code == 201, first.text
    assert first.headers["Location"] == f"/api/v1/reported-values/{first.json()['id']}"
    second = await client.post(
        "/api/v1/reported-values", json=reported(TONGSHAN, "industrial_standard_coverage", 0.96)
    )
    assert second.status_code == 201
    history = (
        await client.get("/api/v1/reported-values", params={"county_code": TONGSHAN})
    ).json()["items"]
    assert [(v["value"], v["current"]) for v in history] == [(0.9, False), (0.96, True)]
    assert history[0]["superseded_by"] == second.json()["id"]
    assert history[1]["evidence"] == {
        "document": f"{TONGSHAN}-industrial_standard_coverage.pdf",
        "text": "縣質監局年度報告",
    }
    assert history[1]["measured_on"] == "2007-12-31"
    current = (await client.get("/api/v1/reported-values", params={"current": True})).json()
    assert [v["value"] for v in current["items"]] == [0.96]
    audit = (await client.get("/api/v1/audit-entries", params={"entity": "reported_value"})).json()
    correction = audit["items"][1]
    assert correction["action"] == "correct"
    assert (correction["before"]["value"], correction["after"]["value"]) == (0.9, 0.96)


async def test_bad_reports_are_refused_and_store_nothing(service: Harness) -> None:
    client = service.client()
    no_set = await client.post(
        "/api/v1/reported-values", json=reported(TONGSHAN, "industrial_standard_coverage", 0.9)
    )
    assert no_set.json()["errors"][0]["field"] == "year"
    await _target_set(service)
    cases = [
        (reported(TONGSHAN, "industrial_standard_coverage", 95), "value"),
        (reported(TONGSHAN, "major_quality_incidents", 0.5), "value"),
        (reported(TONGSHAN, "new_china_famous_brands", 1), "indicator"),
        (reported("320399", "industrial_standard_coverage", 0.9), "county_code"),
        (reported("32032", "industrial_standard_coverage", 0.9), "county_code"),
        (
            reported(TONGSHAN, "industrial_standard_coverage", 0.9, measured_on="2008-01-05"),
            "measured_on",
        ),
    ]
    for body, field in cases:
        response = await client.post("/api/v1/reported-values", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"][0]["field"] == field
    missing_evidence = reported(TONGSHAN, "industrial_standard_coverage", 0.9)
    del missing_evidence["evidence"]
    response = await client.post("/api/v1/reported-values", json=missing_evidence)
    assert response.json()["errors"][0]["field"] == "evidence"
    assert (await client.get("/api/v1/reported-values")).json()["items"] == []


async def test_a_county_without_an_allocation_reports_and_is_shown(service: Harness) -> None:
    body = small_target_set()
    body["indicators"].append(
        {
            "key": "quality_county_acceptance",
            "name": "通過省級驗收",
            "source": "reported",
            "measure": {"kind": "reported_value", "unit": "flag"},
            "comparator": "milestone",
            "weight": 5,
            "allocations": {TONGSHAN: {}},
            "unallocated_credit": 2,
        }
    )
    await service.client().put("/api/v1/target-sets/2007", json=body)
    client = service.client()
    for county in (TONGSHAN, GULOU):
        await accepted(client, reported(county, "quality_county_acceptance", 1))
    standings = (await client.get("/api/v1/assessments/2007/standings")).json()
    rows = {
        s["county_code"]: next(
            i for i in s["indicators"] if i["indicator"] == "quality_county_acceptance"
        )
        for s in standings["items"]
    }
    assert (rows[TONGSHAN]["status"], rows[TONGSHAN]["target"]) == ("met", 1.0)
    gulou = rows[GULOU]
    assert (gulou["status"], gulou["actual"], gulou["target"], gulou["weight"], gulou["bonus"]) == (
        "not_allocated",
        1.0,
        None,
        0.0,
        2.0,
    )


async def test_a_rate_comes_with_its_numerator_and_denominator(service: Harness) -> None:
    await _target_set(service)
    client = service.client()
    fraction = {"numerator": 192, "denominator": 200}
    ok = await client.post(
        "/api/v1/reported-values",
        json=reported(TONGSHAN, "industrial_standard_coverage", 0.96, **fraction),
    )
    assert ok.status_code == 201, ok.text
    assert (ok.json()["numerator"], ok.json()["denominator"]) == (192, 200)
    cases = [
        (reported(TONGSHAN, "industrial_standard_coverage", 0.9, **fraction), "value"),
        (reported(TONGSHAN, "industrial_standard_coverage", 0.96, numerator=192), "denominator"),
        (reported(TONGSHAN, "major_quality_incidents", 0, **fraction), "numerator"),
    ]
    for body, field in cases:
        response = await client.post("/api/v1/reported-values", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field


async def test_reference_values_are_set_read_and_listed(service: Harness) -> None:
    await _target_set(service)
    client = service.client()
    path = "/api/v1/reference-values/2007/provincial_spot_check_pass_rate"
    created = await client.put(path, json=reference(0.9))
    assert created.status_code == 201
    updated = await client.put(
        path,
        json={**reference(0.91), "source": "更正通報"},
        headers={"If-Match": created.headers["ETag"]},
    )
    assert updated.status_code == 200
    read = (await client.get(path)).json()
    assert (read["value"], read["source"], read["published_on"]) == (0.91, "更正通報", "2008-01-20")
    listing = (await client.get("/api/v1/reference-values", params={"year": 2007})).json()
    assert [v["key"] for v in listing["items"]] == ["provincial_spot_check_pass_rate"]
    too_big = await client.put(
        path, json=reference(91), headers={"If-Match": updated.headers["ETag"]}
    )
    assert too_big.status_code == 422
    assert too_big.json()["errors"][0]["field"] == "value"
    assert (await client.get("/api/v1/reference-values/2007/other_value")).status_code == 404
    audit = (await client.get("/api/v1/audit-entries", params={"entity": "reference_value"})).json()
    assert [(e["before"] or {}).get("value") for e in audit["items"]] == [None, 0.9]


async def test_writing_needs_the_write_scope(service: Harness) -> None:
    reader = service.client(scopes=["assessments:read"])
    response = await reader.put("/api/v1/target-sets/2007", json=small_target_set())
    assert response.status_code == 403


async def test_replacing_a_reference_value_needs_its_etag(service: Harness) -> None:
    await _target_set(service)
    client = service.client()
    path = "/api/v1/reference-values/2007/provincial_spot_check_pass_rate"
    created = await client.put(path, json=reference(0.9), headers={"If-None-Match": "*"})
    assert created.status_code == 201
    read = await client.get(path)
    assert read.headers["ETag"] == created.headers["ETag"]
    without = await client.put(path, json=reference(0.91))
    assert without.status_code == 428
    stale = await client.put(path, json=reference(0.91), headers={"If-Match": '"old"'})
    assert stale.status_code == 412
    create_only = await client.put(path, json=reference(0.91), headers={"If-None-Match": "*"})
    assert create_only.status_code == 412
    assert (await client.get(path)).json()["value"] == 0.9
    replaced = await client.put(
        path, json=reference(0.91), headers={"If-Match": read.headers["ETag"]}
    )
    assert replaced.status_code == 200
    assert replaced.headers["ETag"] != read.headers["ETag"]
    assert (await client.get(path)).json()["value"] == 0.91
    other = "/api/v1/reference-values/2007/other_value"
    missing = await client.put(other, json=reference(1), headers={"If-Match": read.headers["ETag"]})
    assert missing.status_code == 412


async def test_reported_values_are_listed_page_by_page(service: Harness) -> None:
    await _target_set(service)
    client = service.client()
    for county in (TONGSHAN, GULOU, TONGSHAN):
        body = reported(county, "industrial_standard_coverage", 0.9)
        assert (await client.post("/api/v1/reported-values", json=body)).status_code == 201
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2, "indicator": "industrial_standard_coverage"}
    while True:
        page = (await client.get("/api/v1/reported-values", params=params)).json()
        seen.extend(v["id"] for v in page["items"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert len(seen) == 3
    assert seen == sorted(seen)
    unknown = await client.get("/api/v1/reported-values", params={"county_code": "320399"})
    assert unknown.json()["items"] == []
    malformed = await client.get("/api/v1/reported-values", params={"county_code": "3203"})
    assert malformed.json()["errors"][0]["field"] == "county_code"
    forged = await client.get("/api/v1/reported-values", params={"cursor": "abc.def"})
    assert forged.status_code == 400

"""Market-access licences beside management-system certificates: food production licences
(QS numbers) and industrial product production licences (XK numbers), with their number
formats, issuing authorities, product categories, validity, lifecycle, filters, verification,
import and export, events and statistics."""

import asyncio
import csv
import io
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from certification.tests.conftest import make_credit_code
from kit.testing import Harness

NewCertificate = Callable[..., Awaitable[dict[str, Any]]]
URL = "/api/v1/certificates"

FOOD: dict[str, Any] = {
    "kind": "food_production_licence",
    "certificate_number": "QS320301010001",
    "issuing_authority": "徐州市質量技術監督局",
    "product_categories": ["糧食加工品", "糕點"],
    "enterprise_credit_code": make_credit_code(1),
    "enterprise_name": "徐州維維食品有限公司",
    "county_code": "320323",
    "scope": "小麥粉、糕點的生產",
    "issued_on": "2008-03-01",
}
INDUSTRIAL: dict[str, Any] = {
    "kind": "production_licence",
    "certificate_number": "XK13-001-00012",
    "issuing_authority": "國家質量監督檢驗檢疫總局",
    "product_categories": ["電線電纜"],
    "enterprise_credit_code": make_credit_code(2),
    "enterprise_name": "徐州電纜廠",
    "county_code": "320302",
    "scope": "電力電纜的生產",
    "issued_on": "2008-04-01",
}


async def _create(service: Harness, payload: dict[str, Any]) -> dict[str, Any]:
    response = await service.client().post(URL, json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_food_production_licence_has_its_kind_authority_categories_and_validity(
    service: Harness,
) -> None:
    body = await _create(service, FOOD)
    assert body["kind"] == "food_production_licence"
    assert body["kind_label"] == "食品生產許可證"
    assert body["issuing_authority"] == "徐州市質量技術監督局"
    assert body["product_categories"] == ["糧食加工品", "糕點"]
    assert body["standard"] is None
    assert body["certification_body"] is None
    assert body["family"] is None
    assert body["expires_on"] == "2011-03-01"
    fetched = (await service.client().get(f"{URL}/{body['id']}")).json()
    assert (fetched["kind"], fetched["product_categories"]) == (
        body["kind"],
        ["糧食加工品", "糕點"],
    )


async def test_a_production_licence_is_valid_five_years(service: Harness) -> None:
    body = await _create(service, INDUSTRIAL)
    assert body["expires_on"] == "2013-04-01"
    assert body["kind_label"] == "全國工業產品生產許可證"


async def test_a_certificate_stays_a_management_system_one(
    service: Harness, new_certificate: NewCertificate
) -> None:
    body = await new_certificate()
    assert body["kind"] == "management_system"
    assert body["product_categories"] == []
    assert body["issuing_authority"] is None


async def test_the_kinds_are_published(service: Harness) -> None:
    response = await service.client().get(f"{URL}/kinds")
    assert response.status_code == 200
    kinds = {kind["code"]: kind for kind in response.json()["kinds"]}
    assert set(kinds) == {"management_system", "food_production_licence", "production_licence"}
    food = kinds["food_production_licence"]
    assert food["validity_years"] == 3
    assert "乳制品" in food["product_categories"]
    assert kinds["production_licence"]["number_example"] == "XK13-001-00012"


@pytest.mark.parametrize(
    ("base", "change", "field"),
    [
        (FOOD, {"certificate_number": "QS32030101000"}, "certificate_number"),
        (FOOD, {"certificate_number": "XK13-001-00012"}, "certificate_number"),
        (FOOD, {"certificate_number": "QS320401010001"}, "certificate_number"),
        (INDUSTRIAL, {"certificate_number": "XK13-001-0012"}, "certificate_number"),
        (INDUSTRIAL, {"certificate_number": "XK1300100012"}, "certificate_number"),
        (FOOD, {"standard": "ISO 9001:2015"}, "standard"),
        (FOOD, {"certification_body": "中國質量認證中心"}, "certification_body"),
        (FOOD, {"accreditation_body": "CNAS"}, "accreditation_body"),
        (FOOD, {"issuing_authority": None}, "issuing_authority"),
        (FOOD, {"issuing_authority": "徐州市工商行政管理局"}, "issuing_authority"),
        (INDUSTRIAL, {"issuing_authority": "徐州市質量技術監督局"}, "issuing_authority"),
        (FOOD, {"product_categories": []}, "product_categories"),
        (FOOD, {"product_categories": ["糕點", "電線電纜"]}, "product_categories[1]"),
        (INDUSTRIAL, {"product_categories": ["乳制品"]}, "product_categories[0]"),
        (FOOD, {"kind": "driving_licence"}, "kind"),
    ],
)
async def test_a_licence_is_validated_per_kind_naming_the_field(
    service: Harness, base: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    response = await service.client().post(URL, json=base | change)
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
    assert (await service.client().get(URL)).json()["items"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"issuing_authority": "徐州市質量技術監督局"}, "issuing_authority"),
        ({"product_categories": ["糕點"]}, "product_categories"),
        ({"standard": None}, "standard"),
        ({"certification_body": None}, "certification_body"),
    ],
)
async def test_a_management_system_certificate_has_no_licence_fields(
    service: Harness, change: dict[str, Any], field: str
) -> None:
    payload = {
        "certificate_number": "00120Q31234R2M",
        "standard": "ISO 9001:2015",
        "certification_body": "中國質量認證中心",
        "enterprise_credit_code": make_credit_code(3),
        "enterprise_name": "徐州工程機械集團有限公司",
        "county_code": "320323",
        "scope": "工程機械",
        "issued_on": "2020-03-01",
    }
    response = await service.client().post(URL, json=payload | change)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_a_licence_number_is_unique_within_its_kind(service: Harness) -> None:
    client = service.client()
    await _create(service, FOOD)
    again = await client.post(URL, json=FOOD | {"enterprise_credit_code": make_credit_code(5)})
    assert again.status_code == 409
    assert again.json()["field"] == "certificate_number"
    other = await _create(service, FOOD | {"certificate_number": "QS320301010002"})
    renumbered = await client.patch(
        f"{URL}/{other['id']}",
        json={"certificate_number": FOOD["certificate_number"]},
        headers={"If-Match": (await client.get(f"{URL}/{other['id']}")).headers["ETag"]},
    )
    assert renumbered.status_code == 409
    assert renumbered.json()["field"] == "certificate_number"


async def test_concurrent_creates_of_one_licence_number_store_one(service: Harness) -> None:
    client = service.client()
    responses = await asyncio.gather(
        client.post(URL, json=FOOD),
        client.post(URL, json=FOOD | {"enterprise_credit_code": make_credit_code(6)}),
    )
    assert sorted(r.status_code for r in responses) == [201, 409]
    assert len((await client.get(URL)).json()["items"]) == 1


async def test_a_licence_edit_is_checked_against_its_kind_and_kept_in_history(
    service: Harness,
) -> None:
    client = service.client()
    licence = await _create(service, FOOD)
    url = f"{URL}/{licence['id']}"
    etag = (await client.get(url)).headers["ETag"]
    for change, field in [
        ({"product_categories": ["水泥"]}, "product_categories[0]"),
        ({"standard": "ISO 9001:2015"}, "standard"),
        ({"certificate_number": "QS3203"}, "certificate_number"),
        ({"kind": "production_licence"}, "kind"),
    ]:
        refused = await client.patch(url, json=change, headers={"If-Match": etag})
        assert refused.status_code == 422, (change, refused.text)
        assert field in [error["field"] for error in refused.json()["errors"]]
    done = await client.patch(
        url,
        json={"product_categories": ["糕點", "乳制品"], "issued_on": "2009-03-01"},
        headers={"If-Match": etag},
    )
    assert done.status_code == 200, done.text
    assert done.json()["product_categories"] == ["糕點", "乳制品"]
    assert done.json()["expires_on"] == "2012-03-01"
    history = (await client.get(f"{url}/history")).json()["items"]
    assert history[-1]["changes"]["product_categories"] == [
        ["糧食加工品", "糕點"],
        ["糕點", "乳制品"],
    ]


async def test_a_licence_is_withdrawn_like_a_certificate_with_kind_in_the_event(
    service: Harness,
) -> None:
    client = service.client()
    licence = await _create(service, FOOD)
    url = f"{URL}/{licence['id']}"
    etag = (await client.get(url)).headers["ETag"]
    response = await client.post(
        f"{url}/status",
        json={"status": "withdrawn", "reason": "停產", "effective_on": "2009-01-10"},
        headers={"If-Match": etag},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "withdrawn"
    events = (
        await service.client(scopes=["events:read", "certificates:read"]).get(
            "/api/v1/events", params={"limit": 100}
        )
    ).json()["items"]
    assert [(e["type"], e["data"]["kind"]) for e in events] == [
        ("certificate.created", "food_production_licence"),
        ("certificate.status_changed", "food_production_licence"),
    ]


async def test_kind_filters_the_list_and_the_export(
    service: Harness, new_certificate: NewCertificate
) -> None:
    client = service.client()
    await new_certificate()
    food = await _create(service, FOOD)
    industrial = await _create(service, INDUSTRIAL)
    everything = (await client.get(URL)).json()["items"]
    assert len(everything) == 3
    listed = (await client.get(URL, params={"kind": "food_production_licence"})).json()["items"]
    assert [item["id"] for item in listed] == [food["id"]]
    unknown = await client.get(URL, params={"kind": "permit"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "kind"
    exported = await client.get(f"{URL}/export", params={"kind": "production_licence"})
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [row["id"] for row in rows] == [industrial["id"]]
    assert rows[0]["kind"] == "production_licence"
    assert rows[0]["issuing_authority"] == "國家質量監督檢驗檢疫總局"
    assert rows[0]["product_categories"] == "電線電纜"
    assert rows[0]["standard"] == ""


async def test_verify_answers_a_licence_number_and_filters_by_kind(service: Harness) -> None:
    client = service.client()
    await _create(service, FOOD)
    found = await client.get(
        f"{URL}/verify",
        params={
            "number": FOOD["certificate_number"],
            "kind": "food_production_licence",
            "as_of": "2009-01-01",
        },
    )
    assert found.status_code == 200, found.text
    assert found.json()["in_force"] is True
    assert found.json()["issuing_authority"] == "徐州市質量技術監督局"
    assert found.json()["product_categories"] == ["糧食加工品", "糕點"]
    other_kind = await client.get(
        f"{URL}/verify",
        params={"number": FOOD["certificate_number"], "kind": "management_system"},
    )
    assert other_kind.status_code == 404
    many = await client.post(
        f"{URL}/verify",
        json={
            "items": [{"enterprise_credit_code": FOOD["enterprise_credit_code"]}],
            "kind": "production_licence",
        },
    )
    assert many.status_code == 200
    assert many.json()["items"][0]["found"] is False


def _csv(rows: list[dict[str, str]]) -> bytes:
    header = [
        "kind",
        "certificate_number",
        "standard",
        "certification_body",
        "issuing_authority",
        "product_categories",
        "enterprise_credit_code",
        "enterprise_name",
        "county_code",
        "scope",
        "issued_on",
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


IMPORTED = {
    "enterprise_name": "徐州食品廠",
    "county_code": "320324",
    "scope": "食品生產",
    "issued_on": "2008-06-01",
}


async def test_import_takes_licences_beside_certificates_and_names_bad_fields(
    service: Harness,
) -> None:
    client = service.client()
    rows = [
        IMPORTED
        | {
            "kind": "food_production_licence",
            "certificate_number": "QS320301010009",
            "issuing_authority": "江蘇省質量技術監督局",
            "product_categories": "乳制品; 飲料",
            "enterprise_credit_code": make_credit_code(11),
        },
        IMPORTED
        | {
            "certificate_number": "00120Q31234R9M",
            "standard": "ISO 9001:2015",
            "certification_body": "中國質量認證中心",
            "enterprise_credit_code": make_credit_code(12),
        },
    ]
    bad = [
        *rows,
        IMPORTED
        | {
            "kind": "production_licence",
            "certificate_number": "XK06-002-00001",
            "issuing_authority": "江蘇省質量技術監督局",
            "product_categories": "化肥",
            "standard": "ISO 9001:2015",
            "enterprise_credit_code": make_credit_code(13),
        },
        IMPORTED
        | {
            "kind": "food_production_licence",
            "certificate_number": "QS320301010009",
            "issuing_authority": "江蘇省質量技術監督局",
            "product_categories": "乳制品",
            "enterprise_credit_code": make_credit_code(14),
        },
        IMPORTED | {"certificate_number": "X-1", "enterprise_credit_code": make_credit_code(15)},
    ]
    headers = {"Content-Type": "text/csv"}
    rejected = await client.post(f"{URL}/import", content=_csv(bad), headers=headers)
    assert rejected.status_code == 422, rejected.text
    assert sorted((e["line"], e["field"]) for e in rejected.json()["errors"]) == [
        (4, "standard"),
        (5, "certificate_number"),
        (6, "certification_body"),
        (6, "standard"),
    ]
    stored = await client.post(f"{URL}/import", content=_csv(rows), headers=headers)
    assert stored.status_code == 201, stored.text
    licences = (await client.get(URL, params={"kind": "food_production_licence"})).json()
    [licence] = licences["items"]
    assert licence["product_categories"] == ["乳制品", "飲料"]
    assert licence["expires_on"] == "2011-06-01"
    again = await client.post(f"{URL}/import", content=_csv(rows[:1]), headers=headers)
    assert again.status_code == 422
    assert again.json()["errors"][0]["field"] == "certificate_number"


# The licence statistics' fixture, by enterprise (year 2008):
# E1 320323  food licence 2007-06-01 and another 2008-03-01: licensed once, one new licence
# E2 320323  food licence 2008-05-01, withdrawn 2008-10-01: new, licensed only before then
# E3 320302  food licence 2005-01-01, expired 2008-01-01: neither
# E4 320302  food licence 2008-02-01, suspended 2008-11-01: new, licensed only before then
# E5 320311  food licence 2009-02-01: neither in 2008
# E6 320323  production licence 2008-04-01: only in the production-licence counts
# E7 320302 and 320303  food licences 2006-07-01 and 2007-01-01: licensed in each, once in all
# E8 320323  ISO 9001 2008-05-01: a management-system certificate, never a licence
@pytest.fixture
async def licences(service: Harness, new_certificate: NewCertificate) -> None:
    client = service.client()
    numbers = iter(range(1, 100))

    async def food(n: int, county: str, issued: str) -> dict[str, Any]:
        return await _create(
            service,
            FOOD
            | {
                "certificate_number": f"QS3203010100{next(numbers):02d}",
                "enterprise_credit_code": make_credit_code(100 + n),
                "county_code": county,
                "issued_on": issued,
            },
        )

    async def status(item: dict[str, Any], to: str, on: str) -> None:
        url = f"{URL}/{item['id']}"
        etag = (await client.get(url)).headers["ETag"]
        response = await client.post(
            f"{url}/status",
            json={"status": to, "reason": "fixture", "effective_on": on},
            headers={"If-Match": etag},
        )
        assert response.status_code == 200, response.text

    await food(1, "320323", "2007-06-01")
    await food(1, "320323", "2008-03-01")
    await status(await food(2, "320323", "2008-05-01"), "withdrawn", "2008-10-01")
    await food(3, "320302", "2005-01-01")
    await status(await food(4, "320302", "2008-02-01"), "suspended", "2008-11-01")
    await food(5, "320311", "2009-02-01")
    await _create(
        service,
        INDUSTRIAL | {"enterprise_credit_code": make_credit_code(106), "county_code": "320323"},
    )
    await food(7, "320302", "2006-07-01")
    await food(7, "320303", "2007-01-01")
    await new_certificate(
        enterprise_credit_code=make_credit_code(108), issued_on="2008-05-01", county_code="320323"
    )


def _rows(body: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {
        row["county_code"]: (row["licensed_enterprises"], row["new_licences"])
        for row in body["by_county"]
        if row["licensed_enterprises"] or row["new_licences"]
    }


@pytest.mark.usefixtures("licences")
async def test_licence_stats_count_enterprises_in_force_and_new_licences(
    service: Harness,
) -> None:
    client = service.client()
    params: dict[str, Any] = {"year": 2008, "kind": "food_production_licence"}
    body = (await client.get(f"{URL}/stats", params=params)).json()
    assert body["kind"] == "food_production_licence"
    assert body["as_of"] == "2008-12-31"
    assert _rows(body) == {"320323": (1, 2), "320302": (1, 1), "320303": (1, 0)}
    assert body["totals"] == {"licensed_enterprises": 2, "new_licences": 3}
    assert "320311" in [row["county_code"] for row in body["by_county"]]

    before = (await client.get(f"{URL}/stats", params=params | {"as_of": "2008-09-30"})).json()
    assert _rows(before) == {"320323": (2, 2), "320302": (2, 1), "320303": (1, 0)}
    assert before["totals"] == {"licensed_enterprises": 4, "new_licences": 3}

    one = (await client.get(f"{URL}/stats", params=params | {"county_code": "320302"})).json()
    assert [row["county_code"] for row in one["by_county"]] == ["320302"]
    assert one["totals"] == {"licensed_enterprises": 1, "new_licences": 1}


@pytest.mark.usefixtures("licences")
async def test_other_kinds_keep_their_own_counts(service: Harness) -> None:
    client = service.client()
    industrial = (
        await client.get(f"{URL}/stats", params={"year": 2008, "kind": "production_licence"})
    ).json()
    assert _rows(industrial) == {"320323": (1, 1)}
    default = (await client.get(f"{URL}/stats", params={"year": 2008})).json()
    assert default["kind"] == "management_system"
    assert default["totals"]["new_certified_enterprises"] == 1
    assert default["totals"]["in_force"] == 1
    families = await client.get(
        f"{URL}/stats",
        params={"year": 2008, "kind": "food_production_licence", "families": "quality"},
    )
    assert families.status_code == 422
    assert families.json()["errors"][0]["field"] == "families"
    unknown = await client.get(f"{URL}/stats", params={"year": 2008, "kind": "permit"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "kind"


@pytest.mark.usefixtures("licences")
async def test_a_county_bound_reader_counts_its_own_counties(service: Harness) -> None:
    bound = service.client(county_codes=["320302"])
    body = (
        await bound.get(f"{URL}/stats", params={"year": 2008, "kind": "food_production_licence"})
    ).json()
    assert [row["county_code"] for row in body["by_county"]] == ["320302"]
    assert body["totals"] == {"licensed_enterprises": 1, "new_licences": 1}

"""The enterprise view and search: the assessment's fan-out to the three data services' lists,
played by stand-ins that filter, bind, embargo and page as the services do
(`tests/system/test_enterprise_view.py` runs the same against the real services)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from kit.dates import add_years
from kit.identifiers import credit_code_check_char
from kit.testing import Harness

from .fakes import FakeDataServices

TONGSHAN, PIZHOU = "320323", "320382"
TODAY = date.today()
READ_ALL = ("enterprises:read", "brands:read", "certificates:read", "spot-checks:read")
UNPUBLISHED = "spot-checks:read-unpublished"


def credit_code(number: int, county: str = TONGSHAN) -> str:
    first17 = f"91{county}MA{number:07d}"
    return first17 + credit_code_check_char(first17)


ACME = credit_code(1)
OTHER = credit_code(2, PIZHOU)


def days(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


def brand(id_: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "product_name": "維維豆奶粉",
        "brand_name": "維維",
        "enterprise_credit_code": ACME,
        "enterprise_name": "維維食品有限公司",
        "county_code": TONGSHAN,
        "tier": "provincial_famous",
        "awarded_on": days(-800),
        "valid_until": days(400),
        "status": "active",
        "review_required": False,
        "review_reason": None,
        **fields,
    }


def certificate(id_: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "certificate_number": f"CN-{id_}",
        "standard": "ISO 9001:2015",
        "enterprise_credit_code": ACME,
        "enterprise_name": "維維食品有限公司",
        "county_code": TONGSHAN,
        "issued_on": days(-500),
        "expires_on": days(600),
        "status": "valid",
        "suspension_overdue": False,
        **fields,
    }


def spot_check(id_: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "product_name": "豆奶粉",
        "enterprise_credit_code": ACME,
        "enterprise_name": "維維食品有限公司",
        "county_code": TONGSHAN,
        "sampled_on": days(-100),
        "result": "pass",
        "final_result": "pass",
        "reinspection_of": None,
        "published": True,
        **fields,
    }


@dataclass
class Lists:
    """The three list endpoints over records held here: exact and prefix credit-code filters,
    `q` over the names, the token's counties, the embargo, cursor pages; every call kept."""

    records: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"brands": [], "certificates": [], "spot_checks": []}
    )
    calls: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)

    async def __call__(
        self, source: str, request: httpx.Request, claims: dict[str, Any]
    ) -> httpx.Response:
        params = dict(request.url.params)
        self.calls.append((source, params, claims))
        scopes = claims["scope"].split()
        rows = self.records[source]
        if code := params.get("enterprise_credit_code"):
            rows = [r for r in rows if r["enterprise_credit_code"] == code]
        if prefix := params.get("enterprise_credit_code_prefix"):
            rows = [r for r in rows if r["enterprise_credit_code"].startswith(prefix.upper())]
        if q := params.get("q"):
            rows = [r for r in rows if q in r["enterprise_name"] + r.get("product_name", "")]
        if "counties" in claims:
            rows = [r for r in rows if r["county_code"] in claims["counties"]]
        if source == "spot_checks":
            if params.get("include_unpublished") == "true":
                if UNPUBLISHED not in scopes:
                    return httpx.Response(403, json={"detail": "include_unpublished"})
            else:
                rows = [r for r in rows if r["published"]]
        start = int(params.get("cursor", "0"))
        limit = int(params["limit"])
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        return httpx.Response(
            200, json={"items": page, "next_cursor": str(start + limit) if more else None}
        )

    def sources_called(self) -> set[str]:
        return {source for source, _, _ in self.calls}


@pytest.fixture
def lists(data_services: FakeDataServices) -> Lists:
    served = Lists()
    data_services.lists = served
    return served


def acme(lists: Lists) -> None:
    """維維: two listings (one expiring in 30 days, one suspended under review), two
    certificates (one suspended overdue), four spot-checks (two failures this year, one
    overturned, one under embargo) and a re-inspection; a Pizhou listing of its own."""
    lists.records["brands"] = [
        brand("b1", valid_until=days(30)),
        brand(
            "b2",
            product_name="維維牛奶",
            status="suspended",
            review_required=True,
            review_reason="spot-check S-9 failed",
        ),
        brand("b3", county_code=PIZHOU, awarded_on=days(-10), enterprise_name="維維集團"),
        brand("x1", enterprise_credit_code=OTHER, enterprise_name="邳州某廠", county_code=PIZHOU),
    ]
    lists.records["certificates"] = [
        certificate("c1", expires_on=days(120)),
        certificate("c2", status="suspended", suspension_overdue=True),
    ]
    lists.records["spot_checks"] = [
        spot_check("s1", sampled_on=days(-300), result="fail", final_result="fail"),
        spot_check("s2", sampled_on=days(-40), result="fail", final_result="fail"),
        spot_check("s3", sampled_on=days(-200), result="fail", final_result="pass"),
        spot_check(
            "s4", sampled_on=days(-20), reinspection_of="s3", result="pass", final_result=None
        ),
        spot_check("s5", sampled_on=days(-5), result="fail", final_result="fail", published=False),
        spot_check("s6", sampled_on=days(-400), result="fail", final_result="fail"),
    ]


async def test_the_view_gathers_every_record_with_counts_flags_and_alerts(
    service: Harness, lists: Lists
) -> None:
    acme(lists)
    response = await service.client(READ_ALL).get(f"/api/v1/enterprises/{ACME.lower()}")
    assert response.status_code == 200, response.text
    view = response.json()

    assert view["credit_code"] == ACME
    assert view["name"] == "維維集團"  # the newest record's: b3, awarded 10 days ago
    assert view["county_codes"] == [TONGSHAN, PIZHOU]
    assert [b["id"] for b in view["brands"]["items"]] == ["b3", "b2", "b1"]  # newest first
    assert view["brands"]["count"] == 3
    assert view["brands"]["by_status"] == {"active": 2, "suspended": 1}
    assert view["certificates"]["by_status"] == {"suspended": 1, "valid": 1}
    spot = view["spot_checks"]
    assert spot["count"] == 5  # s5 is under embargo
    assert spot["failed"] == 3  # s1, s2, s6; s3 is overturned, s4 a re-inspection
    assert spot["latest"]["id"] == "s4"
    assert view["review_flags"] == [
        {
            "brand_id": "b2",
            "product_name": "維維牛奶",
            "tier": "provincial_famous",
            "reason": "spot-check S-9 failed",
        }
    ]
    alerts = {(a["type"], a["subject"]): a for a in view["alerts"]}
    assert set(alerts) == {
        ("brand.expiring_soon", "brands/b1"),
        ("certificate.suspension_overdue", "certificates/c2"),
        ("spot_check.repeated_failures", f"enterprises/{ACME}"),
    }
    assert alerts[("brand.expiring_soon", "brands/b1")]["days_left"] == 30
    assert alerts[("spot_check.repeated_failures", f"enterprises/{ACME}")]["ids"] == ["s2", "s1"]
    assert view["meta"]["completeness"] == {
        "brands": "ok",
        "certificates": "ok",
        "spot_checks": "ok",
    }
    assert view["meta"]["complete"] is True
    assert view["meta"]["not_permitted"] == []
    assert view["meta"]["truncated"] == []

    for _, params, claims in lists.calls:
        assert params["enterprise_credit_code"] == ACME
        assert "include_unpublished" not in params
        assert "counties" not in claims


async def test_a_certificate_expiring_on_the_ninetieth_day_alerts_and_the_ninety_first_not(
    service: Harness, lists: Lists
) -> None:
    lists.records["certificates"] = [
        certificate("c90", expires_on=days(90)),
        certificate("c91", expires_on=days(91)),
        certificate("cgone", expires_on=days(10), status="withdrawn"),
    ]
    view = (await service.client(READ_ALL).get(f"/api/v1/enterprises/{ACME}")).json()
    assert [(a["type"], a["subject"]) for a in view["alerts"]] == [
        ("certificate.expiring_soon", "certificates/c90")
    ]
    assert "brands" in view
    assert view["brands"]["count"] == 0


async def test_a_section_whose_read_scope_the_caller_lacks_is_left_out(
    service: Harness, lists: Lists
) -> None:
    acme(lists)
    client = service.client(["enterprises:read", "certificates:read"])
    response = await client.get(f"/api/v1/enterprises/{ACME}")
    assert response.status_code == 200, response.text
    view = response.json()
    assert "brands" not in view
    assert "spot_checks" not in view
    assert "review_flags" not in view
    assert view["certificates"]["count"] == 2
    assert [a["type"] for a in view["alerts"]] == ["certificate.suspension_overdue"]
    assert view["meta"]["not_permitted"] == ["brands", "spot_checks"]
    assert view["meta"]["completeness"]["brands"].startswith("not_permitted")
    assert view["meta"]["complete"] is False
    assert lists.sources_called() == {"certificates"}


async def test_the_view_needs_enterprises_read_and_a_section_scope(
    service: Harness, lists: Lists
) -> None:
    acme(lists)
    without = await service.client(["brands:read"]).get(f"/api/v1/enterprises/{ACME}")
    assert without.status_code == 403
    assert without.json()["required_scope"] == "enterprises:read"
    nothing = await service.client(["enterprises:read"]).get(f"/api/v1/enterprises/{ACME}")
    assert nothing.status_code == 403
    search = await service.client(["enterprises:read"]).get("/api/v1/enterprises?q=維維")
    assert search.status_code == 403
    assert lists.calls == []


async def test_a_county_bound_caller_sees_only_its_counties(service: Harness, lists: Lists) -> None:
    acme(lists)
    client = service.client(READ_ALL, county_codes=[PIZHOU])
    view = (await client.get(f"/api/v1/enterprises/{ACME}")).json()
    assert [b["id"] for b in view["brands"]["items"]] == ["b3"]
    assert view["certificates"]["count"] == 0
    assert view["spot_checks"]["count"] == 0
    assert view["county_codes"] == [PIZHOU]
    assert all(claims["counties"] == [PIZHOU] for _, _, claims in lists.calls)

    city = service.client([*READ_ALL, "city:read"], county_codes=[PIZHOU])
    assert (await city.get(f"/api/v1/enterprises/{ACME}")).json()["brands"]["count"] == 3

    lists.records["brands"] = [r for r in lists.records["brands"] if r["id"] != "b3"]
    gone = await client.get(f"/api/v1/enterprises/{ACME}")
    assert gone.status_code == 404


async def test_embargoed_results_show_only_to_a_caller_with_the_write_scope(
    service: Harness, lists: Lists
) -> None:
    acme(lists)
    writer = service.client([*READ_ALL, "spot-checks:write"])
    view = (await writer.get(f"/api/v1/enterprises/{ACME}")).json()
    assert view["spot_checks"]["count"] == 6
    assert view["spot_checks"]["latest"]["id"] == "s5"
    repeated = next(a for a in view["alerts"] if a["type"] == "spot_check.repeated_failures")
    assert repeated["ids"] == ["s5", "s2", "s1"]
    (call,) = [c for c in lists.calls if c[0] == "spot_checks"]
    assert call[1]["include_unpublished"] == "true"
    assert UNPUBLISHED in call[2]["scope"].split()
    assert "spot-checks:write" not in call[2]["scope"].split()


async def test_a_data_service_down_is_named_in_completeness(
    service: Harness, lists: Lists, data_services: FakeDataServices
) -> None:
    acme(lists)
    data_services.modes["spot_checks"] = "down"
    response = await service.client(READ_ALL).get(f"/api/v1/enterprises/{ACME}")
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["meta"]["completeness"]["spot_checks"] == "unreachable: ConnectError"
    assert view["meta"]["complete"] is False
    assert "spot_checks" not in view
    assert view["brands"]["count"] == 3
    assert not any(a["type"].startswith("spot_check") for a in view["alerts"])

    unknown = credit_code(99)
    partial = await service.client(READ_ALL).get(f"/api/v1/enterprises/{unknown}")
    assert partial.status_code == 200  # inspection might know it: not a 404
    assert partial.json()["name"] is None


async def test_a_slow_data_service_is_cut_at_the_deadline(
    service: Harness, lists: Lists, data_services: FakeDataServices
) -> None:
    acme(lists)
    data_services.delays["certificates"] = 5.0
    view = (await service.client(READ_ALL).get(f"/api/v1/enterprises/{ACME}")).json()
    assert view["meta"]["completeness"]["certificates"].startswith("timeout")
    assert view["brands"]["count"] == 3


async def test_an_unknown_code_is_a_404_and_a_malformed_one_a_422(
    service: Harness, lists: Lists
) -> None:
    acme(lists)
    client = service.client(READ_ALL)
    missing = await client.get(f"/api/v1/enterprises/{credit_code(99)}")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    bad_check = ACME[:-1] + ("0" if ACME[-1] != "0" else "1")
    for bad in (bad_check, "91320323"):
        response = await client.get(f"/api/v1/enterprises/{bad}")
        assert response.status_code == 422, bad
        assert [e["field"] for e in response.json()["errors"]] == ["credit_code"]
    assert all(params["enterprise_credit_code"] != bad_check for _, params, _ in lists.calls)


async def test_more_records_than_the_view_reads_are_reported_as_truncated(
    service: Harness, lists: Lists
) -> None:
    lists.records["spot_checks"] = [
        spot_check(f"s{n:04d}", sampled_on=days(-(n % 300))) for n in range(1005)
    ]
    view = (await service.client(READ_ALL).get(f"/api/v1/enterprises/{ACME}")).json()
    assert view["spot_checks"]["count"] == 1000
    assert view["spot_checks"]["truncated"] is True
    assert view["meta"]["truncated"] == ["spot_checks"]
    assert view["meta"]["completeness"]["spot_checks"].startswith("truncated")
    assert view["meta"]["sources"]["spot_checks"]["pages"] == 2


async def test_search_merges_the_services_by_credit_code(service: Harness, lists: Lists) -> None:
    acme(lists)
    lists.records["certificates"].append(
        certificate(
            "c9", enterprise_credit_code=OTHER, enterprise_name="邳州維維廠", county_code=PIZHOU
        )
    )
    client = service.client(READ_ALL)
    response = await client.get("/api/v1/enterprises", params={"q": "維維"})
    assert response.status_code == 200, response.text
    found = response.json()
    assert [
        (m["credit_code"], m["brands"], m["certificates"], m["spot_checks"]) for m in found["items"]
    ] == [
        (ACME, 3, 2, 5),
        (OTHER, 0, 1, 0),
    ]
    assert found["items"][0]["name"] == "維維集團"
    assert found["meta"]["complete"] is True

    by_code = (await client.get("/api/v1/enterprises", params={"q": OTHER[:12].lower()})).json()
    assert [m["credit_code"] for m in by_code["items"]] == [OTHER]
    assert by_code["items"][0]["brands"] == 1  # x1, found by its code, not its name

    limited = (await client.get("/api/v1/enterprises", params={"q": "維維", "limit": 1})).json()
    assert len(limited["items"]) == 1

    bound = service.client(READ_ALL, county_codes=[TONGSHAN])
    mine = (await bound.get("/api/v1/enterprises", params={"q": "維維"})).json()
    assert [(m["credit_code"], m["brands"]) for m in mine["items"]] == [(ACME, 2)]


async def test_search_needs_two_characters_and_names_q(service: Harness, lists: Lists) -> None:
    client = service.client(READ_ALL)
    for params in ({"q": " 維 "}, {"q": "x" * 101}, {}):
        response = await client.get("/api/v1/enterprises", params=params)
        assert response.status_code == 422, params
        assert [e["field"] for e in response.json()["errors"]] == ["q"], json.dumps(response.json())
    assert lists.calls == []


async def test_search_names_a_data_service_that_failed(
    service: Harness, lists: Lists, data_services: FakeDataServices
) -> None:
    acme(lists)
    data_services.modes["brands"] = "down"
    found = (await service.client(READ_ALL).get("/api/v1/enterprises", params={"q": "維維"})).json()
    assert found["meta"]["completeness"]["brands"] == "unreachable: ConnectError"
    assert [(m["credit_code"], m["brands"], m["certificates"]) for m in found["items"]] == [
        (ACME, None, 2)
    ]


async def test_a_list_of_an_unexpected_shape_is_named_not_a_500(
    service: Harness, lists: Lists
) -> None:
    acme(lists)
    broken = certificate("c1")
    del broken["expires_on"]
    lists.records["certificates"] = [broken]
    response = await service.client(READ_ALL).get(f"/api/v1/enterprises/{ACME}")
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["meta"]["completeness"]["certificates"].startswith("unexpected response")
    assert "certificates" not in view
    assert view["brands"]["count"] == 3


async def test_repeated_failures_count_the_year_after_the_same_day_a_year_ago(
    service: Harness, lists: Lists
) -> None:
    year_ago = add_years(TODAY, -1)
    lists.records["spot_checks"] = [
        spot_check("on", sampled_on=year_ago.isoformat(), result="fail", final_result="fail"),
        spot_check(
            "after",
            sampled_on=(year_ago + timedelta(days=1)).isoformat(),
            result="fail",
            final_result="fail",
        ),
        spot_check("today", sampled_on=TODAY.isoformat(), result="fail", final_result="fail"),
    ]
    lists.records["brands"] = [brand("b1", status="suspended", suspension_overdue=True)]
    client = service.client(READ_ALL)
    view = (await client.get(f"/api/v1/enterprises/{ACME}")).json()
    alerts = {a["type"]: a for a in view["alerts"]}
    assert set(alerts) == {"spot_check.repeated_failures", "brand.suspension_overdue"}
    assert alerts["spot_check.repeated_failures"]["ids"] == ["today", "after"]
    assert alerts["brand.suspension_overdue"]["subject"] == "brands/b1"

    lists.records["spot_checks"] = lists.records["spot_checks"][:2]
    view = (await client.get(f"/api/v1/enterprises/{ACME}")).json()
    assert [a["type"] for a in view["alerts"]] == ["brand.suspension_overdue"]

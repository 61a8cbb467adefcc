import httpx
import pytest

from kit.errors import FieldError, ValidationFailed, field_name
from kit.testing import Harness

PROBLEM = "application/problem+json"


def test_field_names_from_pydantic_locations() -> None:
    assert field_name(("body", "tier")) == "tier"
    assert field_name(("body", "items", 0, "item")) == "items[0].item"
    assert field_name(("query", "limit")) == "limit"
    assert field_name(("body",)) == "body"


async def test_validation_error_lists_each_field(sample: Harness) -> None:
    response = await sample.client().post(
        "/api/v1/widgets",
        json={"color": "", "county_code": "999999", "enterprise_credit_code": "91350100M000100Y44"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 422
    assert body["type"].endswith("/validation-error")
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"name", "color", "county_code", "enterprise_credit_code"}
    messages = {e["field"]: e["message"] for e in body["errors"]}
    assert "check character" in messages["enterprise_credit_code"]


async def test_malformed_json_is_422_not_500(sample: Harness) -> None:
    response = await sample.client().post(
        "/api/v1/widgets", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_unknown_route_is_404_problem(sample: Harness) -> None:
    response = await sample.client().get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "Not Found"


async def test_method_not_allowed_is_405_problem(sample: Harness) -> None:
    response = await sample.client().delete("/api/v1/widgets")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM


async def test_missing_item_is_404_problem(sample: Harness) -> None:
    response = await sample.client().get("/api/v1/widgets/nope")
    assert response.status_code == 404
    assert response.json()["detail"] == "No widget with id 'nope'."
    assert response.json()["instance"] == "/api/v1/widgets/nope"


async def test_integrity_conflict_is_409_without_sql(sample: Harness) -> None:
    client = sample.client()
    assert (
        await client.post("/api/v1/widgets", json={"name": "a", "color": "red"})
    ).status_code == 201
    response = await client.post("/api/v1/widgets", json={"name": "a", "color": "blue"})
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    text = response.text.lower()
    assert "insert" not in text
    assert "unique" not in text
    listed = (await client.get("/api/v1/widgets")).json()["items"]
    assert [w["color"] for w in listed] == ["red"]


@pytest.mark.parametrize("raise_app_exceptions", [True, False])
async def test_unexpected_error_is_generic_500_with_request_id(
    sample: Harness, raise_app_exceptions: bool
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sample.app, raise_app_exceptions=raise_app_exceptions),
        base_url="http://testserver",
    ) as client:
        response = await client.get("/api/v1/boom", headers={"X-Request-ID": "req-boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["request_id"] == "req-boom-1"
    assert response.headers["x-request-id"] == "req-boom-1"
    assert "SELECT" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text


async def test_openapi_documents_problems_not_fastapi_errors(sample: Harness) -> None:
    document = (await sample.client().get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    create = document["paths"]["/api/v1/widgets"]["post"]["responses"]
    assert "application/problem+json" in create["422"]["content"]
    assert create["default"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }


async def test_nul_in_a_query_parameter_is_422_naming_it(sample: Harness) -> None:
    response = await sample.client().get("/api/v1/widgets", params={"color": "re\x00d"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "color"


async def test_nul_in_body_text_never_becomes_a_500(sample: Harness) -> None:
    client = sample.client()
    response = await client.post("/api/v1/widgets", json={"name": "a\x00b", "color": "red"})
    if sample.engine.dialect.name == "postgresql":
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert (await client.get("/api/v1/widgets")).json()["items"] == []
    else:
        assert response.status_code == 201


def test_validation_failed_carries_extra_problem_members() -> None:
    error = ValidationFailed([FieldError("tier", "unknown")], report={"rows": 3})
    assert error.extra["report"] == {"rows": 3}
    assert error.extra["errors"] == [{"field": "tier", "message": "unknown"}]


async def test_a_number_beyond_the_column_range_is_a_422_not_a_500(sample: Harness) -> None:
    response = await sample.client().get(
        "/api/v1/widgets-by-version", params={"version": 5_441_876_772_418}
    )
    if sample.engine.dialect.name == "postgresql":
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
    else:
        assert response.json() == []


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/widgets/w1", "GET, PATCH"),
        ("PUT", "/api/v1/widgets/w1", "GET, PATCH"),
        ("DELETE", "/api/v1/widgets", "GET, POST"),
        ("POST", "/api/v1/widgets-by-name", "GET"),
    ],
)
async def test_a_405_allows_every_documented_method_of_the_path(
    sample: Harness, method: str, path: str, allowed: str
) -> None:
    response = await sample.client().request(method, path)
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["allow"] == allowed
    assert allowed in response.json()["detail"]

"""Builders shared by the inspection tests: valid payloads and a stand-in brand registry."""

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from kit.auth import TokenVerifier, parse_bearer
from kit.errors import Unauthorized
from kit.identifiers import credit_code_check_char

TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date()
PAST = TODAY - timedelta(days=30)


def credit_code(number: int) -> str:
    """A valid unified social credit code, distinct per number."""
    first17 = f"91320303MA{number:07d}"
    return first17 + credit_code_check_char(first17)


def spot_check(**overrides: Any) -> dict[str, Any]:
    """A valid failing national spot-check, published a week after sampling."""
    body: dict[str, Any] = {
        "plan_code": "2024-GJ-01",
        "level": "national",
        "product_category": "food",
        "product_name": "速凍水餃",
        "enterprise_credit_code": credit_code(1),
        "enterprise_name": "徐州市某某食品有限公司",
        "county_code": "320323",
        "sample_code": "S-0001",
        "sampled_on": (PAST - timedelta(days=7)).isoformat(),
        "result": "fail",
        "nonconforming_items": [
            {"item": "鉛含量", "requirement": "≤0.5 mg/kg", "measured": "0.9 mg/kg"}
        ],
        "mandatory_standard_violation": True,
        "testing_lab": "江蘇省產品質量監督檢驗研究院",
        "report_number": "R-2024-0001",
        "published_on": PAST.isoformat(),
    }
    if overrides.get("result") == "pass":
        body["nonconforming_items"] = []
        body["mandatory_standard_violation"] = False
    body.update(overrides)
    return body


CLEAR_PATH = re.compile(r"^/api/v1/brands/review-flags/(?P<source>[^/]+)/(?P<reference>.+)/clear$")


class FakeBrandRegistry:
    """The brand registry's review-flag endpoints as an HTTP peer that can be taken down.

    `requests` holds the flags' bodies, `clears` each clearing's source, reference, reason
    and the `X-Request-ID` it came with, `request_ids` the IDs every call came with."""

    def __init__(self) -> None:
        self.up = False
        self.verifier: TokenVerifier | None = None
        self.reset()

    def reset(self) -> None:
        self.up = False
        self.reject = False
        self.requests: list[dict[str, Any]] = []
        self.clears: list[dict[str, Any]] = []
        self.request_ids: list[str | None] = []
        self.flags: dict[tuple[str, str], dict[str, Any]] = {}

    def trust(self, public_pem: bytes) -> None:
        self.verifier = TokenVerifier(audience="brand_registry", issuers={"inspection": public_pem})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        assert self.verifier is not None
        clear = CLEAR_PATH.match(request.url.path)
        if request.method != "POST" or not (
            clear or request.url.path == "/api/v1/brands/review-flags"
        ):
            return httpx.Response(404)
        token = parse_bearer(request.headers.get("authorization"))
        if token is None:
            return httpx.Response(401)
        try:
            principal = self.verifier.verify(token)
        except Unauthorized:
            return httpx.Response(401)
        if not principal.has("brands:flag"):
            return httpx.Response(403)
        body = httpx.Response(200, content=request.content).json()
        if self.reject:
            return httpx.Response(422, json={"title": "Validation failed"})
        self.request_ids.append(request.headers.get("x-request-id"))
        if clear:
            return self._clear(clear["source"], clear["reference"], body, request)
        self.requests.append(body)
        key = (body["source"], body["reference"])
        if key in self.flags:
            return httpx.Response(200, json={**self.flags[key], "created": False})
        answer = {
            "reference": body["reference"],
            "source": body["source"],
            "flagged_brand_ids": ["brand-" + body["enterprise_credit_code"][-4:]],
            "created": True,
        }
        self.flags[key] = answer
        return httpx.Response(201, json=answer)

    def _clear(
        self, source: str, reference: str, body: dict[str, Any], request: httpx.Request
    ) -> httpx.Response:
        flag = self.flags.get((source, reference))
        if flag is None:
            return httpx.Response(404, json={"title": "Not found"})
        self.clears.append(
            {
                "source": source,
                "reference": reference,
                "reason": body["reason"],
                "request_id": request.headers.get("x-request-id"),
            }
        )
        return httpx.Response(
            200,
            json={
                "source": source,
                "reference": reference,
                "cleared_brand_ids": flag["flagged_brand_ids"],
                "still_flagged_brand_ids": [],
                "changed": True,
            },
        )

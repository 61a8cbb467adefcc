"""Valid records of each kind for black-box tests, unique to the run where the rules need it."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

COUNTY = "320323"


def brand(enterprise: str, **changes: Any) -> dict[str, Any]:
    return {
        "product_name": "電纜",
        "brand_name": "淮海",
        "enterprise_credit_code": enterprise,
        "enterprise_name": "徐州電纜有限公司",
        "county_code": COUNTY,
        "tier": "provincial_famous",
        "sector": "industry",
        "award_kind": "new",
        "awarded_on": f"{date.today().year - 1}-03-15",
        "international_standard": False,
        **changes,
    }


def certificate(enterprise: str, **changes: Any) -> dict[str, Any]:
    return {
        "certificate_number": f"HX-{secrets.token_hex(5).upper()}",
        "standard": "ISO 9001:2015",
        "certification_body": "中國質量認證中心",
        "accreditation_body": "CNAS",
        "enterprise_credit_code": enterprise,
        "enterprise_name": "徐州電纜有限公司",
        "county_code": COUNTY,
        "scope": "電線電纜的生產",
        "issued_on": f"{date.today().year - 1}-04-01",
        **changes,
    }


def spot_check(enterprise: str, **changes: Any) -> dict[str, Any]:
    year = date.today().year - 1
    return {
        "plan_code": f"HX-{year}-GJ",
        "level": "provincial",
        "product_name": "電纜",
        "product_category": "electrical_materials",
        "county_code": COUNTY,
        "enterprise_credit_code": enterprise,
        "enterprise_name": "徐州電纜有限公司",
        "sample_code": f"S-{secrets.token_hex(5)}",
        "sampled_on": f"{year}-06-01",
        "published_on": f"{year}-07-01",
        "testing_lab": "江蘇省產品質量監督檢驗研究院",
        "result": "pass",
        "report_number": f"R-{secrets.token_hex(3)}",
        **changes,
    }

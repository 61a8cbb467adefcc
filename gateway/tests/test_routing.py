"""Routes and scopes of issue 22: the enterprise view at the assessment service, and what the
service tokens of each backend carry."""

from pathlib import Path

import jwt

from gateway.auth import ServiceTokens
from gateway.routing import ALL_SCOPES, BACKEND_RESOURCES, match_prefix, required_scope
from gateway.service import Identity
from kit.auth import TokenMinter


def _scopes(tokens: ServiceTokens, backend: str, identity: Identity) -> list[str]:
    claims = jwt.decode(tokens.for_backend(backend, identity), options={"verify_signature": False})
    return sorted(str(claims["scope"]).split())


def test_the_enterprise_view_is_served_by_assessment_with_its_own_scope() -> None:
    prefix = match_prefix("/api/v1/enterprises/91320300MA1234567X")
    assert prefix is not None
    assert prefix.backend == "assessment"
    assert required_scope("GET", "/api/v1/enterprises", prefix) == "enterprises:read"
    assert {"events:read", "webhooks:manage", "enterprises:read"} <= set(ALL_SCOPES)


def test_tokens_carry_events_read_everywhere_and_the_data_scopes_to_assessment(
    keys: Path,
) -> None:
    minter = TokenMinter((keys / "gateway.pem").read_bytes(), issuer="gateway")
    tokens = ServiceTokens(minter, BACKEND_RESOURCES)
    caller = Identity(
        client_id="c",
        name="c",
        scopes=frozenset(
            {"events:read", "brands:read", "certificates:read", "spot-checks:write"}
            | {"enterprises:read", "webhooks:manage", "admin"}
        ),
        rate_limit="1/second",
    )
    assert _scopes(tokens, "assessment", caller) == [
        "brands:read",
        "certificates:read",
        "enterprises:read",
        "events:read",
        "spot-checks:write",
    ]
    assert _scopes(tokens, "brand_registry", caller) == ["brands:read", "events:read"]
    assert _scopes(tokens, "certification", caller) == ["certificates:read", "events:read"]
    without = Identity(client_id="d", name="d", scopes=frozenset({"brands:read"}), rate_limit="")
    assert _scopes(tokens, "brand_registry", without) == ["brands:read"]


def test_counterfeit_notices_take_the_flag_scope_and_a_listings_notices_the_read_scope() -> None:
    prefix = match_prefix("/api/v1/brands/counterfeit-notices")
    assert prefix is not None
    assert required_scope("POST", "/api/v1/brands/counterfeit-notices", prefix) == "brands:flag"
    listed = "/api/v1/brands/01a2357a-012a-7000-9b9b-fe231726031c/counterfeit-notices"
    assert required_scope("GET", listed, prefix) == "brands:read"

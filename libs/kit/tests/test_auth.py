import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import ClassVar

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kit.auth import TokenMinter, TokenVerifier, generate_keypair
from kit.errors import Forbidden, Unauthorized
from kit.settings import ServiceSettings
from kit.testing import Harness, ServiceTokens, running_service
from kit.tests.sample_app import SPEC, SampleSettings, build_app, metadata

PAIR = generate_keypair()
OTHER = generate_keypair()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def verifier() -> TokenVerifier:
    return TokenVerifier(audience="brand_registry", issuers={"gateway": PAIR.public_pem}, leeway=0)


def test_valid_token_gives_principal() -> None:
    token = TokenMinter(PAIR.private_pem, issuer="gateway").mint(
        audience="brand_registry", client_id="c1", client_name="Province", scopes={"brands:read"}
    )
    principal = verifier().verify(token)
    assert principal.client_id == "c1"
    assert principal.client_name == "Province"
    assert principal.scopes == frozenset({"brands:read"})


def test_county_binding_travels_in_the_token() -> None:
    token = TokenMinter(PAIR.private_pem, issuer="gateway").mint(
        audience="brand_registry",
        client_id="c1",
        client_name="Peixian",
        scopes={"brands:write"},
        county_codes={"320322"},
    )
    principal = verifier().verify(token)
    assert principal.county_codes == frozenset({"320322"})
    assert principal.covers("320322")
    assert not principal.covers("320312")
    assert principal.readable_counties() == frozenset({"320322"})
    assert principal.reads("320322")
    assert not principal.reads("320312")
    principal.require_county("320322")
    with pytest.raises(Forbidden) as refused:
        principal.require_county("320312")
    assert refused.value.extra["field"] == "county_code"
    assert refused.value.extra["errors"][0]["field"] == "county_code"


def test_a_city_wide_client_covers_every_county() -> None:
    principal = verifier().verify(
        TokenMinter(PAIR.private_pem, issuer="gateway").mint(
            audience="brand_registry", client_id="c", client_name="c", scopes={"brands:read"}
        )
    )
    assert principal.county_codes == frozenset()
    assert principal.covers("320312")
    assert principal.readable_counties() is None
    assert principal.reads("320312")


def test_a_bound_client_with_city_read_reads_every_county() -> None:
    principal = verifier().verify(
        TokenMinter(PAIR.private_pem, issuer="gateway").mint(
            audience="brand_registry",
            client_id="c",
            client_name="c",
            scopes={"brands:write", "city:read"},
            county_codes={"320322"},
        )
    )
    assert principal.readable_counties() is None
    assert principal.reads("320312")
    assert not principal.covers("320312")


def test_a_malformed_counties_claim_is_refused() -> None:
    now = int(time.time())
    claims = {"iss": "gateway", "aud": "brand_registry", "sub": "x", "iat": now, "exp": now + 60}
    key = serialization.load_pem_private_key(PAIR.private_pem, None)
    assert isinstance(key, Ed25519PrivateKey)
    token = jwt.encode({**claims, "counties": "320322"}, key, algorithm="EdDSA")
    with pytest.raises(Unauthorized, match="counties"):
        verifier().verify(token)


def test_expired_token_is_rejected() -> None:
    token = TokenMinter(PAIR.private_pem, issuer="gateway", ttl_seconds=-10).mint(
        audience="brand_registry", client_id="c", client_name="c", scopes=set()
    )
    with pytest.raises(Unauthorized, match="expired"):
        verifier().verify(token)


def test_wrong_audience_is_rejected() -> None:
    token = TokenMinter(PAIR.private_pem, issuer="gateway").mint(
        audience="inspection", client_id="c", client_name="c", scopes=set()
    )
    with pytest.raises(Unauthorized, match="another service"):
        verifier().verify(token)


def test_token_signed_by_another_key_is_rejected() -> None:
    token = TokenMinter(OTHER.private_pem, issuer="gateway").mint(
        audience="brand_registry", client_id="c", client_name="c", scopes=set()
    )
    with pytest.raises(Unauthorized, match="invalid"):
        verifier().verify(token)


def test_untrusted_issuer_is_rejected() -> None:
    token = TokenMinter(PAIR.private_pem, issuer="someone").mint(
        audience="brand_registry", client_id="c", client_name="c", scopes=set()
    )
    with pytest.raises(Unauthorized, match="does not trust"):
        verifier().verify(token)


def test_symmetric_algorithm_confusion_is_rejected() -> None:
    now = int(time.time())
    claims = {"iss": "gateway", "aud": "brand_registry", "sub": "x", "iat": now, "exp": now + 60}
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(PAIR.public_pem, f"{header}.{payload}".encode(), hashlib.sha256)
    token = f"{header}.{payload}.{_b64(signature.digest())}"
    with pytest.raises(Unauthorized):
        verifier().verify(token)


def _mint(ttl_seconds: int = 60, client_id: str = "c") -> str:
    return TokenMinter(PAIR.private_pem, issuer="gateway", ttl_seconds=ttl_seconds).mint(
        audience="brand_registry", client_id=client_id, client_name=client_id, scopes=set()
    )


def test_a_token_accepted_before_is_refused_once_it_expires() -> None:
    checker = verifier()
    token = _mint(ttl_seconds=1)
    assert checker.verify(token).client_id == "c"
    expires = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(Unauthorized, match="expired"):
        checker.verify(token)


def test_a_token_accepted_before_does_not_vouch_for_a_forged_signature() -> None:
    checker = verifier()
    token = _mint()
    checker.verify(token)
    header, payload, signature = token.split(".")
    forged = _b64(bytes(64))
    assert forged != signature
    with pytest.raises(Unauthorized, match="invalid"):
        checker.verify(f"{header}.{payload}.{forged}")
    assert checker.verify(token).client_id == "c"


def test_tokens_beyond_the_remembered_number_are_still_verified() -> None:
    checker = TokenVerifier(
        audience="brand_registry", issuers={"gateway": PAIR.public_pem}, leeway=0, remembered=2
    )
    tokens = [_mint(client_id=f"c{i}") for i in range(5)]
    for _ in range(2):
        assert [checker.verify(token).client_id for token in tokens] == [f"c{i}" for i in range(5)]


def test_garbage_is_rejected() -> None:
    with pytest.raises(Unauthorized, match="malformed"):
        verifier().verify("not.a.token")


async def test_request_without_token_is_401_problem(sample: Harness) -> None:
    response = await sample.client(authenticated=False).get("/api/v1/widgets")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_missing_scope_is_403_naming_it(sample: Harness) -> None:
    response = await sample.client(scopes=["widgets:read"]).post(
        "/api/v1/widgets", json={"name": "n", "color": "c"}
    )
    assert response.status_code == 403
    assert response.json()["required_scope"] == "widgets:write"


async def test_health_needs_no_token(sample: Harness) -> None:
    client = sample.client(authenticated=False)
    assert (await client.get("/health/live")).status_code == 200


def _peer_verifier() -> TokenVerifier:
    return TokenVerifier(
        audience="brand_registry",
        issuers={"gateway": PAIR.public_pem, "inspection": OTHER.public_pem},
        grants={"gateway": None, "inspection": frozenset({"brands:flag"})},
    )


def test_a_peer_may_grant_only_its_own_scopes() -> None:
    minter = TokenMinter(OTHER.private_pem, issuer="inspection")
    flag = minter.mint(
        audience="brand_registry", client_id="inspection", client_name="i", scopes={"brands:flag"}
    )
    assert _peer_verifier().verify(flag).scopes == frozenset({"brands:flag"})
    for scope in ("brands:write", "certificates:write", "assessments:publish"):
        beyond = minter.mint(
            audience="brand_registry",
            client_id="inspection",
            client_name="i",
            scopes={"brands:flag", scope},
        )
        with pytest.raises(Forbidden, match=f"may not grant {scope}"):
            _peer_verifier().verify(beyond)
    gateway = TokenMinter(PAIR.private_pem, issuer="gateway").mint(
        audience="brand_registry", client_id="c", client_name="c", scopes={"brands:write"}
    )
    assert _peer_verifier().verify(gateway).scopes == frozenset({"brands:write"})


def test_the_shipped_issuers_trust_each_peer_for_its_calls_only() -> None:
    class BrandSettings(ServiceSettings):
        service_name: ClassVar[str] = "brand_registry"

    class CertificationSettings(ServiceSettings):
        service_name: ClassVar[str] = "certification"

    brands = BrandSettings().issuer_grants()
    assert brands == {
        "gateway": None,
        "assessment": frozenset({"brands:read"}),
        "inspection": frozenset({"brands:flag"}),
    }
    assert "inspection" not in CertificationSettings().issuer_grants()


async def test_a_token_beyond_its_issuers_grants_is_a_403_problem(
    service_tokens: ServiceTokens, tmp_path: Path
) -> None:
    """A service configured to let the gateway grant only `widgets:read` refuses a token of
    the gateway's that carries `widgets:write` too, with a 403 naming the issuer."""
    async with running_service(
        spec=SPEC,
        metadata=metadata,
        build_app=build_app,
        settings_factory=SampleSettings,
        tokens=service_tokens,
        tmp_dir=tmp_path,
        token_issuer_scopes={"gateway": ["widgets:read"]},
    ) as harness:
        allowed = await harness.client(("widgets:read",)).get("/api/v1/widgets")
        beyond = await harness.client(("widgets:read", "widgets:write")).get("/api/v1/widgets")
    assert allowed.status_code == 200
    assert beyond.status_code == 403
    assert beyond.json()["issuer"] == "gateway"
    assert "widgets:write" in beyond.json()["detail"]


def test_an_upload_with_rows_of_another_county_is_refused_naming_the_lines() -> None:
    principal = verifier().verify(
        TokenMinter(PAIR.private_pem, issuer="gateway").mint(
            audience="brand_registry",
            client_id="c",
            client_name="c",
            scopes={"brands:write"},
            county_codes={"320322"},
        )
    )
    principal.require_rows_in_binding([])
    with pytest.raises(Forbidden) as refused:
        principal.require_rows_in_binding([3, 7])
    assert refused.value.extra["field"] == "county_code"
    assert refused.value.extra["lines"] == [3, 7]
    assert "lines 3, 7" in refused.value.detail

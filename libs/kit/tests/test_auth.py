import base64
import hashlib
import hmac
import json
import time

import pytest

from kit.auth import TokenMinter, TokenVerifier, generate_keypair
from kit.errors import Unauthorized
from kit.testing import Harness

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

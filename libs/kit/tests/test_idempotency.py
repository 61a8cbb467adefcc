from kit.testing import Harness


async def test_retry_returns_first_response_and_creates_once(sample: Harness) -> None:
    client = sample.client()
    headers = {"Idempotency-Key": "key-1"}
    body = {"name": "once", "color": "red"}
    first = await client.post("/api/v1/widgets", json=body, headers=headers)
    second = await client.post("/api/v1/widgets", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert len((await client.get("/api/v1/widgets")).json()["items"]) == 1


async def test_same_key_different_body_is_422(sample: Harness) -> None:
    client = sample.client()
    headers = {"Idempotency-Key": "key-2"}
    await client.post("/api/v1/widgets", json={"name": "a", "color": "red"}, headers=headers)
    again = await client.post(
        "/api/v1/widgets", json={"name": "b", "color": "red"}, headers=headers
    )
    assert again.status_code == 422
    assert again.headers["content-type"] == "application/problem+json"
    assert len((await client.get("/api/v1/widgets")).json()["items"]) == 1


async def test_keys_are_scoped_per_client(sample: Harness) -> None:
    headers = {"Idempotency-Key": "shared"}
    one = await sample.client(client_id="one").post(
        "/api/v1/widgets", json={"name": "one", "color": "red"}, headers=headers
    )
    two = await sample.client(client_id="two").post(
        "/api/v1/widgets", json={"name": "two", "color": "red"}, headers=headers
    )
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] != two.json()["id"]


async def test_key_in_flight_is_409(sample: Harness) -> None:
    table = sample.app.state.idempotency_table
    from kit.idempotency import _now

    async with sample.engine.begin() as connection:
        await connection.execute(
            table.insert().values(
                scope="test-client|/api/v1/widgets|busy", state="in_flight", created_at=_now()
            )
        )
    response = await sample.client().post(
        "/api/v1/widgets", json={"name": "x", "color": "red"}, headers={"Idempotency-Key": "busy"}
    )
    assert response.status_code == 409


async def test_unauthenticated_post_with_key_is_not_replayed(sample: Harness) -> None:
    headers = {"Idempotency-Key": "anon"}
    client = sample.client(authenticated=False)
    first = await client.post("/api/v1/widgets", json={"name": "x", "color": "r"}, headers=headers)
    assert first.status_code == 401
    ok = await sample.client().post(
        "/api/v1/widgets", json={"name": "x", "color": "r"}, headers=headers
    )
    assert ok.status_code == 201

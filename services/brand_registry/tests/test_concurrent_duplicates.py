"""The duplicate rule holds under concurrency: identical awards sent together store one
listing, and every other request gets the 409 a sequential duplicate gets."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command

from brand_registry.app import MIGRATIONS, VERSION_TABLE
from brand_registry.tests.support import count, credit_code, listing
from kit.db import create_engine
from kit.migrations import alembic_config
from kit.testing import Harness, provision_database

BRANDS = "/api/v1/brands"
IMPORT = "/api/v1/brands/import"
COPIES = 20


def award(**overrides: Any) -> dict[str, Any]:
    """A valid listing, valid within the horizon an award may reach."""
    return listing(valid_until="2030-08-31", **overrides)


def _problem(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return {k: body[k] for k in ("type", "title", "status", "detail", "errors", "existing_id")}


def _csv(payloads: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(payloads[0]), lineterminator="\r\n")
    writer.writeheader()
    for payload in payloads:
        writer.writerow(
            {k: str(v).lower() if isinstance(v, bool) else v for k, v in payload.items()}
        )
    return buffer.getvalue().encode()


async def test_identical_awards_sent_together_store_one(service: Harness) -> None:
    clients = [service.client() for _ in range(COPIES)]
    responses = await asyncio.gather(*(c.post(BRANDS, json=award()) for c in clients))

    created = [r for r in responses if r.status_code == 201]
    assert len(created) == 1, [r.status_code for r in responses]
    assert await count(service.client()) == 1
    sequential = _problem(await service.client().post(BRANDS, json=award()))
    assert created[0].json()["id"] in sequential["detail"]
    refused = [r for r in responses if r.status_code != 201]
    assert len(refused) == COPIES - 1
    assert all(_problem(r) == sequential for r in refused)


async def test_two_rows_of_one_import_awarding_the_same_listing_store_none(
    service: Harness,
) -> None:
    body = _csv([award(), award()])
    response = await service.client().post(
        IMPORT, content=body, headers={"Content-Type": "text/csv"}
    )

    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["line"], e["field"]) for e in errors] == [(3, "product_name")], errors
    assert await count(service.client()) == 0


async def test_an_import_racing_a_post_of_the_same_award_stores_one(service: Harness) -> None:
    others = [award(product_name=f"產品{n}") for n in range(300)]
    body = _csv([*others, award()])
    imported, posted = await asyncio.gather(
        service.client().post(IMPORT, content=body, headers={"Content-Type": "text/csv"}),
        service.client().post(BRANDS, json=award()),
    )

    stored = await count(service.client(), limit=500)
    if imported.status_code == 201:
        assert posted.status_code == 409, posted.text
        assert stored == len(others) + 1
    else:
        assert posted.status_code == 201, posted.text
        assert imported.status_code in {409, 422}, imported.text
        assert stored == 1


AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _stored(brand_id: str) -> dict[str, Any]:
    return {
        "id": brand_id,
        "product_name": "維維豆奶粉",
        "brand_name": "維維",
        "enterprise_credit_code": credit_code(1),
        "enterprise_name": "維維集團股份有限公司",
        "county_code": "320323",
        "tier": "china_famous",
        "sector": "industry",
        "award_kind": "new",
        "awarded_on": date(2024, 9, 1),
        "valid_until": date(2027, 8, 31),
        "international_standard": False,
        "status": "active",
        "review_required": False,
        "search_text": "維維豆奶粉",
        "created_at": AT,
        "updated_at": AT,
        "version": 1,
    }


async def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    config = alembic_config(MIGRATIONS, url, VERSION_TABLE)
    await asyncio.to_thread(command.downgrade if down else command.upgrade, config, revision)


async def test_the_upgrade_stops_at_listings_already_duplicated(tmp_path: Path) -> None:
    """A database holding two unrevoked listings of one award is named, not half-migrated;
    once one is revoked the index is made, and the downgrade drops it again."""
    async with provision_database("brand_registry_duplicates", tmp_path) as url:
        await _migrate(url, "0004")
        engine = create_engine(url)
        brand = sa.table("brand", sa.column("id"), sa.column("revoked_on"))
        try:
            metadata = sa.MetaData()
            async with engine.begin() as connection:
                await connection.run_sync(metadata.reflect)
                await connection.execute(
                    metadata.tables["brand"].insert(), [_stored("b1"), _stored("b2")]
                )

            with pytest.raises(RuntimeError, match="listings b1 and b2") as refused:
                await _migrate(url, "head")
            assert "revoke the extra listing" in str(refused.value)

            async with engine.begin() as connection:
                await connection.execute(
                    brand.update().where(brand.c.id == "b2").values(revoked_on=date(2024, 10, 1))
                )
            await _migrate(url, "head")
            async with engine.begin() as connection:
                again = {**_stored("b3"), "awarded_on": date(2024, 9, 1)}
                with pytest.raises(sa.exc.IntegrityError):
                    await connection.execute(metadata.tables["brand"].insert(), [again])

            await _migrate(url, "0004", down=True)
            async with engine.begin() as connection:
                await connection.execute(metadata.tables["brand"].insert(), [_stored("b3")])
        finally:
            await engine.dispose()


async def test_listings_edited_together_onto_one_award_keep_it_unique(service: Harness) -> None:
    client = service.client()
    created = [
        await client.post(
            BRANDS, json=listing(awarded_on=f"{year}-01-01", valid_until=f"{year}-06-30")
        )
        for year in range(1980, 1980 + 2 * (COPIES + 1), 2)
    ]
    assert all(r.status_code == 201 for r in created), [r.text for r in created]
    *edited, last = created
    dates = {"awarded_on": "2024-01-01", "valid_until": "2024-06-30"}

    responses = await asyncio.gather(
        *(
            service.client().patch(
                f"{BRANDS}/{r.json()['id']}", json=dates, headers={"If-Match": r.headers["ETag"]}
            )
            for r in edited
        )
    )

    assert [r.status_code for r in responses].count(200) == 1, [r.status_code for r in responses]
    sequential = await client.patch(
        f"{BRANDS}/{last.json()['id']}", json=dates, headers={"If-Match": last.headers["ETag"]}
    )
    winner = next(r for r in responses if r.status_code == 200).json()
    assert _problem(sequential)["existing_id"] == winner["id"]
    refused = [r for r in responses if r.status_code != 200]
    assert [_problem(r) for r in refused] == [_problem(sequential)] * (COPIES - 1)

"""`python -m gateway.clients add|list|revoke|rotate`: manage API clients from the shell.

Works on the database of `GATEWAY_DATABASE_URL`; a running gateway notices a revocation
within `GATEWAY_AUTH_CACHE_SECONDS` (one second by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import service
from gateway.revocations import announce
from gateway.schemas import ClientCreate, ClientRead
from gateway.settings import Settings
from kit.db import create_engine, create_sessionmaker
from kit.errors import ProblemError
from kit.pagination import MAX_LIMIT, CursorCodec, PageParams


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway.clients", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="create a client and print its key once")
    add.add_argument("name")
    add.add_argument("--scopes", nargs="*", default=[], help="e.g. brands:read certificates:read")
    add.add_argument("--rate-limit", default=None, help="e.g. 600/minute")
    add.add_argument(
        "--counties", nargs="*", default=[], help="bind to these county codes, e.g. 320323"
    )
    commands.add_parser("list", help="list clients and their keys (never the keys themselves)")
    revoke = commands.add_parser("revoke", help="revoke a client and every key it holds")
    revoke.add_argument("client_id")
    rotate = commands.add_parser("rotate", help="issue a new key; the old ones stop working")
    rotate.add_argument("client_id")
    rotate.add_argument("--keep-previous", action="store_true")
    return parser


async def _run(args: argparse.Namespace, settings: Settings) -> Any:
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            action = _action(args, settings)
            result = await action(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


def _action(
    args: argparse.Namespace, settings: Settings
) -> Callable[[AsyncSession], Awaitable[Any]]:
    if args.command == "add":
        data = ClientCreate(
            name=args.name,
            scopes=args.scopes,
            rate_limit=args.rate_limit,
            county_codes=args.counties,
        )
        return lambda s: service.create_client(
            session=s,
            data=data,
            default_rate_limit=settings.default_rate_limit,
            region_codes=settings.region_codes(),
        )
    if args.command == "list":
        return _every_client
    if args.command == "revoke":
        return lambda s: service.revoke_client(session=s, client_id=args.client_id)
    return lambda s: service.rotate_key(
        session=s, client_id=args.client_id, keep_previous=args.keep_previous
    )


async def _every_client(session: AsyncSession) -> list[ClientRead]:
    """Every client, page after page; the cursors live only as long as this command."""
    codec = CursorCodec(secrets.token_bytes(32))
    clients: list[ClientRead] = []
    cursor: str | None = None
    while True:
        page = PageParams(limit=MAX_LIMIT, cursor=cursor, codec=codec, fingerprint="list")
        listed = await service.list_clients(session=session, page=page)
        clients += listed.items
        if listed.next_cursor is None:
            return clients
        cursor = listed.next_cursor


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        result = asyncio.run(_run(args, Settings()))
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            print(f"{field}: {error['msg']}", file=sys.stderr)
        return 2
    except ProblemError as exc:
        print(exc.detail, file=sys.stderr)
        return 1
    if args.command in {"revoke", "rotate"}:
        settings = Settings()
        if announce(settings.redis_url, settings.rate_limit_prefix):
            print("every gateway replica was told at once", file=sys.stderr)
        else:
            print(
                "without GATEWAY_REDIS_URL, running gateways notice within "
                f"{settings.auth_cache_seconds:g} s",
                file=sys.stderr,
            )
    items = result if isinstance(result, list) else [result]
    for item in items:
        print(json.dumps(item.model_dump(mode="json"), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

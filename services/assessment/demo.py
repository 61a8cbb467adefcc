"""Loading the target sets shipped under `config/target_sets/` when the demo is requested."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError

from assessment.catalogue import Catalogue
from assessment.service import load_seed_target_set
from assessment.settings import Settings

logger = structlog.get_logger("assessment.demo")


async def load_shipped_target_sets(app: FastAPI) -> list[int]:
    """Store each `<year>.json` as version 1 of its year unless that year already has a set."""
    settings: Settings = app.state.settings
    catalogue: Catalogue = app.state.catalogue
    loaded = []
    for path in sorted(settings.target_sets_dir.glob("*.json")):
        if not path.stem.isdigit():
            continue
        document = json.loads(path.read_text(encoding="utf-8"))
        try:
            async with app.state.sessionmaker() as session:
                if await load_seed_target_set(
                    session=session, year=int(path.stem), document=document, catalogue=catalogue
                ):
                    loaded.append(int(path.stem))
                await session.commit()
        except IntegrityError:
            # Another replica stored the same year first.
            continue
    if loaded:
        logger.info("target_sets_loaded", years=loaded)
    return loaded


@asynccontextmanager
async def demo_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """With `load_demo`, load the shipped target sets at start-up."""
    if app.state.settings.load_demo:
        await load_shipped_target_sets(app)
    yield

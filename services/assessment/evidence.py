"""The blob store evidence files are kept in, opened once for the app's lifetime."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from assessment.settings import Settings
from kit.storage import open_store

logger = structlog.get_logger("assessment.evidence")


@asynccontextmanager
async def evidence_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open `evidence_store` (a bad URL stops the start-up, saying why) and make the folder
    uploads are received in."""
    settings: Settings = app.state.settings
    try:
        store = open_store(settings.evidence_store_url)
    except ValueError as error:
        raise RuntimeError(f"ASSESSMENT_EVIDENCE_STORE: {error}") from error
    settings.evidence_upload_dir.mkdir(parents=True, exist_ok=True)
    app.state.evidence_store = store
    logger.info("evidence_store", store=store.describe(), max_bytes=settings.evidence_max_bytes)
    yield

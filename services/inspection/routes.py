"""HTTP routes of the inspection service."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")

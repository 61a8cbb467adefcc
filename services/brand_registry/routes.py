"""HTTP routes of the brand_registry service."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")

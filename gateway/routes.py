"""HTTP routes of the gateway service."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")

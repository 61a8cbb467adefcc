"""HTTP routes of the certification service."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")

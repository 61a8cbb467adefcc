"""The standings page: the year's county ranking, served by the gateway at `/`."""

from gateway.ui.routes import router

__all__ = ["router"]

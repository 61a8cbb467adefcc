"""Real HTTP servers for the change-feed and webhook tests, each a uvicorn server in a thread
of the test process on a free loopback port:

- `FeedStub`: a data service's part of the change feed as the services' contract has it
  (`GET /api/v1/events?after=&type=&limit=`, scope `events:read`, filtered by the token's
  scopes and counties, `horizon` and the 410 below it), its events put by the test;
- `Receiver`: a webhook receiver verifying every delivery with
  `standardwebhooks.Webhook(secret).verify`, answering as the test scripts it (a status, or
  a delay past the sender's timeout).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from standardwebhooks import Webhook, WebhookVerificationError

from kit.auth import TokenVerifier, parse_bearer
from kit.errors import Unauthorized
from kit.events import EVENT_TYPES
from scripts.processes import free_port


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` served by uvicorn in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the stub server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": "error", "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


@dataclass
class FeedStub:
    """One data service's feed: `add` events, `purge_to` a horizon, switch it `down`."""

    source: str
    public_key: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    horizon: int = 0
    down: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.events.clear()
            self.requests.clear()
            self.horizon = 0
            self.down = False

    def add(
        self,
        type: str,
        *,
        county_code: str | None = None,
        time: datetime | None = None,
        subject: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A new event, numbered after the last."""
        with self._lock:
            sequence = (int(self.events[-1]["sequence"]) if self.events else self.horizon) + 1
            moment = time or datetime.now(UTC)
            event: dict[str, Any] = {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": f"/{self.source}",
                "type": type,
                "time": moment.isoformat().replace("+00:00", "Z"),
                "subject": subject or f"things/{sequence}",
                "datacontenttype": "application/json",
                "sequence": str(sequence).zfill(20),
            }
            if county_code is not None:
                event["countycode"] = county_code
            event["data"] = data or {"n": sequence}
            self.events.append(event)
            return event

    def purge_to(self, horizon: int) -> None:
        with self._lock:
            self.horizon = horizon
            self.events = [e for e in self.events if int(e["sequence"]) > horizon]

    def app(self) -> FastAPI:
        verifier = TokenVerifier.from_files(
            audience=self.source, issuers={"gateway": self.public_key}
        )
        app = FastAPI()

        @app.get("/api/v1/events")
        async def events(request: Request) -> Response:
            if self.down:
                return _problem(503, "down for the test")
            try:
                principal = verifier.verify(
                    parse_bearer(request.headers.get("authorization")) or ""
                )
            except Unauthorized as exc:
                return _problem(401, exc.detail)
            if not principal.has("events:read"):
                return _problem(403, "needs events:read", required_scope="events:read")
            query = request.query_params
            after, limit = int(query.get("after", "0")), int(query.get("limit", "100"))
            wanted = [t.strip() for t in query.get("type", "").split(",") if t.strip()]
            self.requests.append(
                {"after": after, "type": query.get("type"), "scopes": sorted(principal.scopes)}
            )
            if after < self.horizon:
                return _problem(410, "purged", field="after", horizon=self.horizon)
            counties = principal.readable_counties()
            with self._lock:
                chosen = [
                    event
                    for event in self.events
                    if int(event["sequence"]) > after
                    and principal.has(EVENT_TYPES[event["type"]])
                    and (
                        not wanted
                        or any(
                            event["type"] == t
                            or (t.endswith(".*") and event["type"].startswith(t[:-1]))
                            for t in wanted
                        )
                    )
                    and (
                        counties is None
                        or event.get("countycode") is None
                        or event["countycode"] in counties
                    )
                ][:limit]
            next_after = int(chosen[-1]["sequence"]) if chosen else after
            return JSONResponse(
                {"items": chosen, "next_after": next_after, "horizon": self.horizon}
            )

        return app


@dataclass
class Received:
    """One request the receiver got, and which of its secrets verified it."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified_by: list[str]
    answered: int | str

    @property
    def event_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    """A webhook endpoint: verifies with each of `secrets`, answers the next `script` entry
    (a status code, or `("sleep", seconds)`), then `default`."""

    secrets: list[str] = field(default_factory=list)
    script: list[Any] = field(default_factory=list)
    default: int = 204
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def reset(self) -> None:
        self.secrets.clear()
        self.script.clear()
        self.received.clear()
        self.default = 204

    def delivered_ids(self) -> list[str]:
        """Event ids of the requests it answered 2xx, in order."""
        return [
            r.event_id
            for r in self.received
            if isinstance(r.answered, int) and 200 <= r.answered < 300
        ]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks/{name}")
        async def hook(name: str, request: Request) -> Response:
            body = await request.body()
            headers = dict(request.headers)
            verified = []
            for secret in self.secrets:
                try:
                    Webhook(secret).verify(body, headers)
                    verified.append(secret)
                except WebhookVerificationError:
                    pass
            step = self.script.pop(0) if self.script else self.default
            answered = step if isinstance(step, int) else "sleep"
            record = Received(request.url.path, headers, body, verified, answered)
            self.received.append(record)
            if not isinstance(step, int):
                await asyncio.sleep(float(step[1]))
                return Response(status_code=200)
            if not verified:
                return Response(status_code=401)
            return Response(status_code=step)

        return app


class FakeClock:
    """A clock the webhook worker reads, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

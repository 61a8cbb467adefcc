"""Evidence files of reported values: typed from their content, kept by SHA-256 in the
configured store (a local folder or S3), streamed back as stored; an oversized, mistyped or
interrupted upload leaves neither a file nor a record."""

import asyncio
import hashlib
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import uvicorn
from fastapi import FastAPI

from assessment.app import SPEC
from assessment.evidence import evidence_lifespan
from assessment.models import metadata
from assessment.settings import Settings
from kit.testing import Harness, ServiceTokens, running_service

from .builders import PIZHOU, TONGSHAN, bound_client, pdf_bytes, reported, small_target_set
from .conftest import DATA_SERVICES, OVERRIDES, SCOPES, _build, _settings

VALUES = "/api/v1/reported-values"
NAME = "銅山縣2007年標準覆蓋率核查報告.pdf"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200


async def _value(service: Harness, county: str = TONGSHAN) -> dict[str, Any]:
    client = service.client()
    target_set = await client.put("/api/v1/target-sets/2007", json=small_target_set())
    assert target_set.status_code in (200, 201), target_set.text
    created = await client.post(VALUES, json=reported(county, "industrial_standard_coverage", 0.96))
    assert created.status_code == 201, created.text
    value: dict[str, Any] = created.json()
    return value


@pytest.fixture(autouse=True)
def empty_store(service: Harness) -> None:
    """The suite's local store starts each test empty (the tables are emptied after each)."""
    shutil.rmtree(_var(service) / "evidence", ignore_errors=True)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _var(service: Harness) -> Path:
    return Path(service.app.state.settings.var_dir)


async def _round_trip(service: Harness) -> None:
    value = await _value(service)
    county = bound_client(service, [TONGSHAN])
    content = pdf_bytes("Tongshan 2007 coverage 96%")
    uploaded = await county.post(
        f"{VALUES}/{value['id']}/evidence", files={"file": (NAME, content, "text/plain")}
    )
    assert uploaded.status_code == 201, uploaded.text
    evidence = uploaded.json()
    assert evidence["content_type"] == "application/pdf"
    assert (evidence["name"], evidence["size"]) == (NAME, len(content))
    assert evidence["sha256"] == hashlib.sha256(content).hexdigest()
    assert evidence["uploaded_by"] == "county-client"
    assert uploaded.headers["Location"] == evidence["download_url"]

    listed = (await county.get(f"{VALUES}/{value['id']}/evidence")).json()["items"]
    assert listed == [evidence]
    reader = service.client(["assessments:read"])
    async with reader.stream("GET", evidence["download_url"]) as download:
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["content-length"] == str(len(content))
        disposition = download.headers["content-disposition"]
        assert f"filename*=UTF-8''{quote(NAME, safe='')}" in disposition
        body = b"".join([chunk async for chunk in download.aiter_bytes()])
    assert body == content
    store = service.app.state.evidence_store
    assert await store.exists(evidence["sha256"])

    audit = (
        await reader.get(
            "/api/v1/audit-entries",
            params={"entity_id": f"2007/{TONGSHAN}/industrial_standard_coverage"},
        )
    ).json()["items"]
    attach = next(e for e in audit if e["action"] == "attach_evidence")
    assert (attach["actor"], attach["after"]["sha256"]) == ("county-client", evidence["sha256"])


async def test_a_pdf_is_stored_and_streamed_back_from_a_local_folder(service: Harness) -> None:
    await _round_trip(service)
    assert len(_files(_var(service) / "evidence")) >= 1


async def test_a_pdf_is_stored_and_streamed_back_from_s3(
    service_tokens: ServiceTokens, s3_store_url: str, tmp_path: Path
) -> None:
    # The second app makes a key pair of its own; the suite's stand-ins go back to the first.
    suite_key = DATA_SERVICES.public_key
    try:
        await _round_trip_on_s3(service_tokens, s3_store_url, tmp_path)
    finally:
        DATA_SERVICES.public_key = suite_key


async def _round_trip_on_s3(
    service_tokens: ServiceTokens, s3_store_url: str, tmp_path: Path
) -> None:
    async with running_service(
        spec=SPEC,
        metadata=metadata,
        build_app=_build,
        settings_factory=_settings,
        tokens=service_tokens,
        tmp_dir=tmp_path,
        default_scopes=SCOPES,
        **{**OVERRIDES, "evidence_store": s3_store_url},
    ) as s3_service:
        assert s3_service.app.state.evidence_store.describe().startswith("s3://")
        await _round_trip(s3_service)
        assert _files(tmp_path / "evidence") == []


async def test_who_may_attach_and_read(service: Harness) -> None:
    value = await _value(service)
    url = f"{VALUES}/{value['id']}/evidence"
    form = {"file": ("a.pdf", pdf_bytes(), "application/pdf")}
    pizhou = bound_client(service, [PIZHOU], ["assessments:read", "assessments:write", "city:read"])
    refused = await pizhou.post(url, files=form)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["field"] == "county_code"
    reader = service.client(["assessments:read"])
    assert (await reader.post(url, files=form)).status_code == 403
    hidden = bound_client(service, [PIZHOU])
    assert (await hidden.get(url)).status_code == 404
    assert (await hidden.post(url, files=form)).status_code == 404
    assert (await service.client([]).get(url)).status_code == 403
    city = await service.client().post(url, files=form)
    assert city.status_code == 201
    missing = await reader.get(f"{url}/01234567-0000-7000-8000-000000000000")
    assert missing.status_code == 404
    assert (await service.client().get(f"{VALUES}/nope/evidence")).status_code == 404


async def test_a_renamed_executable_is_refused(service: Harness) -> None:
    value = await _value(service)
    county = bound_client(service, [TONGSHAN])
    for name, content in (("x.pdf", ELF), ("x.pdf", b"MZ\x90\x00" + b"\x00" * 300)):
        refused = await county.post(
            f"{VALUES}/{value['id']}/evidence",
            files={"file": (name, content, "application/pdf")},
        )
        assert refused.status_code == 415, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == "file"
    assert (await county.get(f"{VALUES}/{value['id']}/evidence")).json()["items"] == []
    assert _files(_var(service) / "evidence") == []
    assert _files(_var(service) / "evidence-uploads") == []
    not_a_form = await county.post(
        f"{VALUES}/{value['id']}/evidence",
        content=pdf_bytes(),
        headers={"content-type": "application/pdf"},
    )
    assert not_a_form.status_code == 415
    no_file = await county.post(f"{VALUES}/{value['id']}/evidence", files={"other": ("a", b"x")})
    assert no_file.status_code == 422
    assert no_file.json()["errors"][0]["field"] == "file"


async def test_an_upload_over_the_limit_is_refused_and_nothing_is_stored(
    service: Harness,
) -> None:
    value = await _value(service)
    url = f"{VALUES}/{value['id']}/evidence"
    county = bound_client(service, [TONGSHAN])
    content = pdf_bytes() + b"\x00" * (21 * 1024 * 1024)
    declared = await county.post(url, files={"file": ("big.pdf", content, "application/pdf")})
    assert declared.status_code == 413, declared.text
    assert declared.json()["limit_bytes"] == 20 * 1024 * 1024

    boundary = "qrpboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()

    async def chunked() -> AsyncIterator[bytes]:
        yield head
        for start in range(0, len(content), 1024 * 1024):
            yield content[start : start + 1024 * 1024]
        yield f"\r\n--{boundary}--\r\n".encode()

    streamed = await county.post(
        url,
        content=chunked(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert streamed.status_code == 413, streamed.text
    assert (await county.get(url)).json()["items"] == []
    assert _files(_var(service) / "evidence") == []
    assert _files(_var(service) / "evidence-uploads") == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_an_upload_cut_off_halfway_leaves_no_file_and_no_record(service: Harness) -> None:
    value = await _value(service)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(service.app, host="127.0.0.1", port=port, lifespan="off", log_level="error")
    )
    serving = asyncio.create_task(server.serve())
    writer: asyncio.StreamWriter | None = None
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        token = service.tokens.minter.mint(
            audience="assessment",
            client_id="county-client",
            client_name="county-client",
            scopes={"assessments:read", "assessments:write"},
            county_codes={TONGSHAN},
        )
        boundary = "qrpboundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        content = pdf_bytes() + b"\x00" * (2 * 1024 * 1024)
        total = len(head) + len(content) + len(f"\r\n--{boundary}--\r\n")
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            (
                f"POST {VALUES}/{value['id']}/evidence HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {total}\r\n\r\n"
            ).encode()
            + head
            + content[: len(content) // 2]
        )
        await writer.drain()
        uploads = _var(service) / "evidence-uploads"
        for _ in range(200):
            if _files(uploads):
                break
            await asyncio.sleep(0.01)
        receiving = bool(_files(uploads))
        held = service.engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined]
        writer.transport.abort()
        assert receiving, "the server never started receiving the file"
        # While the file arrives the request holds no database connection.
        assert held == 0
        for _ in range(300):
            if not _files(uploads):
                break
            await asyncio.sleep(0.01)
        assert _files(uploads) == []
    finally:
        if writer is not None:
            writer.transport.abort()
        server.should_exit = server.force_exit = True
        await serving
    client = service.client()
    assert (await client.get(f"{VALUES}/{value['id']}/evidence")).json()["items"] == []
    assert _files(_var(service) / "evidence") == []
    audit = (await client.get("/api/v1/audit-entries")).json()["items"]
    assert not [e for e in audit if e["action"] == "attach_evidence"]


async def test_an_empty_file_is_refused(service: Harness) -> None:
    value = await _value(service)
    county = bound_client(service, [TONGSHAN])
    response = await county.post(
        f"{VALUES}/{value['id']}/evidence", files={"file": ("a.pdf", b"", "application/pdf")}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "file"


async def test_a_value_takes_a_bounded_number_of_files(
    service: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("assessment.service.MAX_EVIDENCE_FILES", 2)
    value = await _value(service)
    url = f"{VALUES}/{value['id']}/evidence"
    client = service.client()
    for text in ("one", "two"):
        form = {"file": (f"{text}.pdf", pdf_bytes(text), "application/pdf")}
        assert (await client.post(url, files=form)).status_code == 201
    refused = await client.post(url, files={"file": ("3.pdf", pdf_bytes("3"), "application/pdf")})
    assert refused.status_code == 409
    assert refused.json()["limit"] == 2
    first = await client.get(url, params={"limit": 1})
    assert [e["name"] for e in first.json()["items"]] == ["one.pdf"]
    rest = await client.get(url, params={"limit": 1, "cursor": first.json()["next_cursor"]})
    assert [e["name"] for e in rest.json()["items"]] == ["two.pdf"]


async def test_a_superseded_value_takes_no_evidence(service: Harness) -> None:
    value = await _value(service)
    client = service.client()
    await client.post(VALUES, json=reported(TONGSHAN, "industrial_standard_coverage", 0.97))
    refused = await client.post(
        f"{VALUES}/{value['id']}/evidence",
        files={"file": ("a.pdf", pdf_bytes(), "application/pdf")},
    )
    assert refused.status_code == 409


async def test_a_bad_store_url_stops_the_start(tmp_path: Path) -> None:
    app = FastAPI()
    app.state.settings = Settings(var_dir=tmp_path, evidence_store="ftp://example.org/evidence")
    with pytest.raises(RuntimeError, match="ASSESSMENT_EVIDENCE_STORE"):
        async with evidence_lifespan(app):
            pass

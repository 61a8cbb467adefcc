"""kit.storage on real files and a real S3 server: round trips, types, uploads, atomic writes."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.requests import ClientDisconnect

from kit.errors import PayloadTooLarge, ValidationFailed, install_problem_handlers
from kit.storage import (
    DOCX,
    JPEG,
    MAX_ZIP_ENTRIES,
    OFD,
    PDF,
    PNG,
    XLSX,
    BlobNotFound,
    BlobStore,
    LocalStore,
    S3Store,
    open_store,
    receive,
    receive_upload,
    remove_stale_uploads,
    sniff,
)

pytest_plugins = ["kit.storage_testing"]  # its fixtures: s3_server, s3_store_url

MiB = 1024 * 1024


# -- sample files ----------------------------------------------------------------------------


def make_pdf(payload_bytes: int = 0) -> bytes:
    """A valid one-page PDF (a drawn rectangle), with a binary stream of `payload_bytes`."""
    payload = os.urandom(payload_bytes)
    drawing = b"0 0 1 rg 72 700 200 60 re f"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(drawing), drawing),
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(payload), payload),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def make_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


JPEG_SAMPLE = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    b"\xff\xdb\x00\x43\x00" + bytes(64) + b"\xff\xd9"
)
ELF_SAMPLE = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00" + bytes(200)
PE_SAMPLE = b"MZ\x90\x00" + bytes(56) + b"\x80\x00\x00\x00" + bytes(64) + b"PE\x00\x00" + bytes(200)


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def content_types(main: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/main.xml" ContentType="{main}"/></Types>'
    ).encode()


XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
XLSX_SAMPLE = make_zip(
    {
        "[Content_Types].xml": content_types(XLSX_MAIN),
        "_rels/.rels": b"<Relationships/>",
        "xl/workbook.xml": b"<workbook/>",
        "xl/worksheets/sheet1.xml": b"<worksheet/>",
    }
)
DOCX_SAMPLE = make_zip(
    {
        "[Content_Types].xml": content_types(DOCX_MAIN),
        "_rels/.rels": b"<Relationships/>",
        "word/document.xml": b"<w:document/>",
    }
)
OFD_SAMPLE = make_zip(
    {
        "OFD.xml": "<ofd:OFD><ofd:DocBody><ofd:DocInfo><ofd:Title>抽查报告</ofd:Title>".encode(),
        "Doc_0/Document.xml": b"<ofd:Document/>",
    }
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def leftovers(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


# -- stores ----------------------------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return open_store(f"file://{tmp_path / 'blobs'}")
    url: str = request.getfixturevalue("s3_store_url")
    return open_store(url)


async def test_a_pdf_round_trips_byte_identical(store: BlobStore, tmp_path: Path) -> None:
    # 9 MiB: above the multipart threshold, so S3 receives it in parts.
    pdf = make_pdf(9 * MiB)
    source = tmp_path / "report.pdf"
    source.write_bytes(pdf)
    digest = sha(pdf)
    assert not await store.exists(digest)
    assert await store.size(digest) is None

    await store.put_file(source, sha256=digest, content_type=PDF)

    assert await store.exists(digest)
    assert await store.size(digest) == len(pdf)
    streamed = hashlib.sha256()
    total = 0
    largest = 0
    async for chunk in store.open(digest, chunk_size=64 * 1024):
        streamed.update(chunk)
        total += len(chunk)
        largest = max(largest, len(chunk))
    assert (streamed.hexdigest(), total) == (digest, len(pdf))
    assert largest <= 64 * 1024
    assert await read_all(store.open(digest)) == pdf

    await store.delete(digest)
    assert not await store.exists(digest)
    with pytest.raises(BlobNotFound):
        await read_all(store.open(digest))
    await store.delete(digest)  # deleting a missing blob is fine


async def test_put_keeps_an_existing_blob(store: BlobStore, tmp_path: Path) -> None:
    pdf = make_pdf(1000)
    source = tmp_path / "a.pdf"
    source.write_bytes(pdf)
    digest = sha(pdf)
    await store.put_file(source, sha256=digest, content_type=PDF)
    await store.put_file(source, sha256=digest, content_type="application/octet-stream")
    assert await read_all(store.open(digest)) == pdf
    if isinstance(store, LocalStore):
        assert leftovers(store.root) == [store.path_of(digest)]
    else:
        assert isinstance(store, S3Store)
        head = store._client.head_object(Bucket=store.bucket, Key=store.key_of(digest))
        assert head["ContentType"] == PDF  # the first put's object, kept


async def test_s3_uploads_a_large_file_in_parts(s3_store_url: str, tmp_path: Path) -> None:
    store = open_store(s3_store_url)
    assert isinstance(store, S3Store)
    pdf = make_pdf(17 * MiB)
    source = tmp_path / "large.pdf"
    source.write_bytes(pdf)
    await store.put_file(source, sha256=sha(pdf), content_type=PDF)
    head = store._client.head_object(Bucket=store.bucket, Key=store.key_of(sha(pdf)))
    assert head["ETag"].strip('"').endswith("-3")  # three 8 MiB parts
    assert head["ContentLength"] == len(pdf)
    assert hashlib.sha256(await read_all(store.open(sha(pdf)))).hexdigest() == sha(pdf)


async def test_store_names_must_be_sha256(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for name in ["../../etc/passwd", "A" * 64, "abc", "g" * 64]:
        with pytest.raises(ValueError, match="64 lowercase hex"):
            await store.size(name)


async def test_local_put_refuses_a_file_whose_hash_differs(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "blobs")
    source = tmp_path / "a.pdf"
    source.write_bytes(make_pdf())
    wrong = sha(b"something else")
    with pytest.raises(ValueError, match="SHA-256"):
        await store.put_file(source, sha256=wrong, content_type=PDF)
    assert leftovers(store.root) == []


_FAILING_COPY = """
import asyncio, resource, signal, sys
from pathlib import Path
from kit.storage import LocalStore, StoreUnavailable
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
root, source, digest = sys.argv[1:4]
resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))
try:
    asyncio.run(LocalStore(Path(root)).put_file(Path(source), sha256=digest, content_type="x"))
except StoreUnavailable as error:
    print("copy failed:", error.status, error.__cause__.errno)
    sys.exit(3)
"""


def test_local_put_is_atomic_when_the_copy_fails_midway(tmp_path: Path) -> None:
    # The disk "fills up" after 1 MiB of a 3 MiB copy (a file size limit in a child process).
    pdf = make_pdf(3 * MiB)
    source = tmp_path / "big.pdf"
    source.write_bytes(pdf)
    root = tmp_path / "blobs"
    done = subprocess.run(
        [sys.executable, "-c", _FAILING_COPY, str(root), str(source), sha(pdf)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "copy failed: 503 27" in done.stdout  # a 503 problem, caused by EFBIG
    store = LocalStore(root)
    assert not store.path_of(sha(pdf)).exists()
    assert leftovers(root) == []  # the partial temporary file is gone too


_FAILING_RECEIVE = """
import asyncio, resource, signal, sys
from pathlib import Path
from kit.storage import StoreUnavailable, receive
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))

async def chunks():
    for _ in range(48):
        yield bytes(64 * 1024)

try:
    asyncio.run(receive(chunks(), limit=10 * 1024 * 1024, directory=Path(sys.argv[1])))
except StoreUnavailable as error:
    print("receive failed:", error.status, error.__cause__.errno)
    sys.exit(3)
"""


def test_receive_onto_a_full_disk_is_503_and_keeps_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FAILING_RECEIVE, str(tmp_path / "incoming")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "receive failed: 503 27" in done.stdout
    assert leftovers(tmp_path) == []


async def test_leftovers_of_a_crash_are_swept(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "blobs")
    pdf = make_pdf()
    source = tmp_path / "a.pdf"
    source.write_bytes(pdf)
    await store.put_file(source, sha256=sha(pdf), content_type=PDF)
    blob = store.path_of(sha(pdf))
    stale_copy = blob.parent / ".incoming-abc.tmp"
    fresh_copy = blob.parent / ".incoming-def.tmp"
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    stale_upload = incoming / ".upload-abc.part"
    fresh_upload = incoming / ".upload-def.part"
    for path in (stale_copy, fresh_copy, stale_upload, fresh_upload):
        path.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    for path in (stale_copy, stale_upload, blob):
        os.utime(path, (two_hours_ago, two_hours_ago))

    assert await store.remove_stale() == 1
    assert await remove_stale_uploads(incoming) == 1
    assert sorted(leftovers(tmp_path)) == sorted([source, blob, fresh_copy, fresh_upload])
    assert await remove_stale_uploads(tmp_path / "missing") == 0


# -- choosing a store ------------------------------------------------------------------------


def test_open_store_local_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    absolute = open_store(f"file://{tmp_path}/evidence")
    assert isinstance(absolute, LocalStore)
    assert absolute.root == tmp_path / "evidence"
    relative = open_store("file://var/evidence")
    assert isinstance(relative, LocalStore)
    assert relative.root == tmp_path / "var" / "evidence"
    plain = open_store("var/evidence")
    assert isinstance(plain, LocalStore)
    assert plain.root == relative.root
    assert absolute.describe() == f"file://{tmp_path}/evidence"


def credentials_of(store: S3Store) -> Any:
    client: Any = store._client
    return client._request_signer._credentials


def test_open_store_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    store = open_store(
        "s3://key:se%2Fcret@qrp-evidence/city/2026/?endpoint_url=http://127.0.0.1:9000&region=cn-north-1"
    )
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.endpoint_url) == (
        "qrp-evidence",
        "city/2026",
        "http://127.0.0.1:9000",
    )
    assert store.key_of("ab" * 32) == f"city/2026/ab/ab/{'ab' * 32}"
    credentials = credentials_of(store)
    assert (credentials.access_key, credentials.secret_key) == ("key", "se/cret")
    assert store._client.meta.region_name == "cn-north-1"
    assert "se/cret" not in store.describe()
    assert "key" not in store.describe()

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    bare = open_store("s3://qrp-evidence")
    assert isinstance(bare, S3Store)
    assert bare.prefix == ""
    assert bare.key_of("cd" * 32) == f"cd/cd/{'cd' * 32}"
    assert credentials_of(bare).access_key == "from-env"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("http://example.com/x", "Unsupported store URL scheme 'http'"),
        ("ftp://user:pw@host/x", r"'ftp://\*\*\*@host/x'"),
        ("file://", "names no directory"),
        ("file:///x?y=1", "no query"),
        ("s3://", "names no valid bucket"),
        ("s3:///prefix", "names no valid bucket"),
        ("s3://Upper_Case/x", "names no valid bucket"),
        ("s3://bucket/x?endpoint=http://h", "Unknown parameter.*endpoint"),
        ("s3://bucket/x?region=a&region=b", "region must be given once"),
        ("s3://bucket/x?region=", "region must be given once"),
        ("s3://bucket/x?endpoint_url=localhost:9000", "must be http"),
        ("s3://onlykey@bucket/x", "access_key:secret@"),
    ],
)
def test_open_store_refuses_invalid_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)


async def test_an_unreachable_s3_is_a_503_problem(tmp_path: Path) -> None:
    from kit.errors import ServiceUnavailable

    store = open_store(
        "s3://testing:testing@nowhere/x?endpoint_url=http://127.0.0.1:9&region=us-east-1"
    )
    with pytest.raises(ServiceUnavailable) as caught:
        await store.size("ab" * 32)
    assert caught.value.status == 503
    assert "testing" not in str(caught.value.extra)


# -- sniffing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (make_pdf(), PDF),
        (JPEG_SAMPLE, JPEG),
        (make_png(), PNG),
        (XLSX_SAMPLE, XLSX),
        (DOCX_SAMPLE, DOCX),
        (OFD_SAMPLE, OFD),
        (ELF_SAMPLE, None),
        (PE_SAMPLE, None),
        (make_zip({"readme.txt": b"hello", "data/a.csv": b"a,b"}), None),
        (b"", None),
        (b"%PD", None),
        (b"plain text that names %PDF- later", None),
        (DOCX_SAMPLE[: len(DOCX_SAMPLE) // 2], None),  # a cut-off zip
        (b"PK\x03\x04" + os.urandom(500), None),
    ],
    ids=[
        "pdf",
        "jpeg",
        "png",
        "xlsx",
        "docx",
        "ofd",
        "elf",
        "pe",
        "other-zip",
        "empty",
        "short",
        "text",
        "cut-zip",
        "garbage-zip",
    ],
)
async def test_sniff_from_a_file_and_from_bytes(
    data: bytes, expected: str | None, tmp_path: Path
) -> None:
    path = tmp_path / "upload.pdf"  # the name never matters
    path.write_bytes(data)
    assert await sniff(data[:4096], path) == expected
    assert await sniff(data) == expected


async def test_sniff_reads_ooxml_content_types_when_parts_are_named_otherwise() -> None:
    xlsx = make_zip({"[Content_Types].xml": content_types(XLSX_MAIN), "sheets/book.xml": b"<x/>"})
    docx = make_zip({"[Content_Types].xml": content_types(DOCX_MAIN), "text/doc.xml": b"<x/>"})
    other = make_zip({"[Content_Types].xml": content_types("application/xml")})
    assert await sniff(xlsx) == XLSX
    assert await sniff(docx) == DOCX
    assert await sniff(other) is None


async def test_sniff_refuses_a_zip_with_too_many_entries(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("OFD.xml", b"<ofd:OFD/>")
        for number in range(MAX_ZIP_ENTRIES):
            archive.writestr(f"f/{number}", b"")
    path = tmp_path / "many.ofd"
    path.write_bytes(buffer.getvalue())
    started = time.perf_counter()
    assert await sniff(path.read_bytes()[:4096], path) is None
    assert time.perf_counter() - started < 1.0


async def test_sniff_refuses_a_zip_whose_directory_claims_too_much(tmp_path: Path) -> None:
    data = bytearray(OFD_SAMPLE)
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 60000, 60000)  # entries claimed
    assert await sniff(bytes(data)) is None
    data = bytearray(OFD_SAMPLE)
    struct.pack_into("<I", data, end + 12, 0xFFFFFFF0)  # directory size claimed
    assert await sniff(bytes(data)) is None
    # zip64 markers without a zip64 record
    data = bytearray(OFD_SAMPLE)
    struct.pack_into("<HH", data, end + 8, 0xFFFF, 0xFFFF)
    assert await sniff(bytes(data)) is None


async def test_sniff_reads_a_zip64_archive(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()
    with monkeypatch.context() as patch:
        patch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 0)  # the zip64 end record, always
        with zipfile.ZipFile(buffer, "w", allowZip64=True) as archive:
            archive.writestr("OFD.xml", b"<ofd:OFD/>")
    data = buffer.getvalue()
    assert b"PK\x06\x06" in data
    assert b"PK\x06\x07" in data
    assert await sniff(data) == OFD
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["OFD.xml"]


# -- receiving -------------------------------------------------------------------------------


async def test_receive_writes_hashes_and_keeps_the_head(tmp_path: Path) -> None:
    pdf = make_pdf(300_000)
    received = await receive(chunked(pdf, 1000), limit=len(pdf), directory=tmp_path)
    assert received.size == len(pdf)
    assert received.sha256 == sha(pdf)
    assert received.head == pdf[:4096]
    assert received.path.parent == tmp_path
    assert received.path.read_bytes() == pdf
    assert await sniff(received.head, received.path) == PDF
    received.discard()
    assert leftovers(tmp_path) == []
    received.discard()  # twice is fine


async def test_receive_over_the_limit_is_413_and_keeps_nothing(tmp_path: Path) -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 64 * 1024
            yield bytes(64 * 1024)

    with pytest.raises(PayloadTooLarge) as caught:
        await receive(endless(), limit=2 * MiB, directory=tmp_path, field="file")
    assert caught.value.status == 413
    assert caught.value.extra["limit_bytes"] == 2 * MiB
    assert caught.value.extra["errors"][0]["field"] == "file"
    assert pulled <= 2 * MiB + 64 * 1024  # refused as soon as the limit was passed
    assert leftovers(tmp_path) == []


async def test_receive_of_nothing_is_422(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="empty"):
        await receive(chunked(b""), limit=10, directory=tmp_path)
    assert leftovers(tmp_path) == []


async def test_receive_cancelled_midway_keeps_nothing(tmp_path: Path) -> None:
    stalled = asyncio.Event()

    async def stalling() -> AsyncIterator[bytes]:
        for _ in range(40):  # 2.5 MiB: written to the temporary file already
            yield bytes(64 * 1024)
        stalled.set()
        await asyncio.Event().wait()
        yield b"never"

    task = asyncio.create_task(receive(stalling(), limit=10 * MiB, directory=tmp_path))
    await asyncio.wait_for(stalled.wait(), 5)
    [partial] = leftovers(tmp_path)
    assert partial.stat().st_size >= 2 * MiB
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(tmp_path) == []


async def test_receive_interrupted_by_a_disconnect_keeps_nothing(tmp_path: Path) -> None:
    async def disconnecting() -> AsyncIterator[bytes]:
        yield bytes(3 * MiB)
        raise ClientDisconnect()

    with pytest.raises(ClientDisconnect):
        await receive(disconnecting(), limit=10 * MiB, directory=tmp_path)
    assert leftovers(tmp_path) == []


# -- multipart uploads -----------------------------------------------------------------------


def upload_app(directory: Path, limit: int) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, Any]:
        received = await receive_upload(request, limit=limit, directory=directory)
        try:
            return {
                "size": received.size,
                "sha256": received.sha256,
                "filename": received.filename,
                "declared_type": received.declared_type,
                "content_type": await sniff(received.head, received.path),
                "left": [path.name for path in directory.iterdir()],  # noqa: ASYNC240
            }
        finally:
            received.discard()

    return app


@pytest.fixture
async def uploads(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = upload_app(tmp_path / "incoming", 20 * MiB)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_upload_of_a_file_part(uploads: httpx.AsyncClient, tmp_path: Path) -> None:
    pdf = make_pdf(2 * MiB)
    answer = await uploads.post(
        "/upload",
        data={"note": "第一批"},
        files={"file": ("抽查报告 2026.pdf", pdf, "application/pdf")},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "size": len(pdf),
        "sha256": sha(pdf),
        "filename": "抽查报告 2026.pdf",
        "declared_type": "application/pdf",
        "content_type": PDF,
        "left": [answer.json()["left"][0]],
    }
    assert leftovers(tmp_path / "incoming") == []


async def test_upload_file_name_forms(uploads: httpx.AsyncClient) -> None:
    def form(disposition: str) -> bytes:
        return (
            (
                f"--b\r\nContent-Disposition: form-data; {disposition}\r\n"
                "Content-Type: application/pdf\r\n\r\n"
            ).encode()
            + make_pdf()
            + b"\r\n--b--\r\n"
        )

    headers = {"content-type": "multipart/form-data; boundary=b"}
    cases = {
        'name="file"; filename="C:\\\\Users\\\\x\\\\report.pdf"': "report.pdf",
        "name=\"file\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf": "报告.pdf",
        'name="file"': None,
    }
    for disposition, expected in cases.items():
        answer = await uploads.post("/upload", content=form(disposition), headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["filename"] == expected
    answer = await uploads.post(
        "/upload", content=form('name="file"; filename="a\x01b.pdf"'), headers=headers
    )
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"field": "file", "message": "The file name has control characters."}
    ]


async def test_a_renamed_executable_is_received_but_sniffs_as_nothing(
    uploads: httpx.AsyncClient,
) -> None:
    answer = await uploads.post("/upload", files={"file": ("x.pdf", ELF_SAMPLE, "application/pdf")})
    assert answer.status_code == 200
    assert answer.json()["content_type"] is None


async def test_an_oversized_upload_is_refused_at_once(
    uploads: httpx.AsyncClient, tmp_path: Path
) -> None:
    started = time.perf_counter()
    answer = await uploads.post(
        "/upload", files={"file": ("big.pdf", make_pdf(21 * MiB), "application/pdf")}
    )
    elapsed = time.perf_counter() - started
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["limit_bytes"] == 20 * MiB
    assert body["errors"][0]["field"] == "file"
    assert "20971520 bytes" in body["detail"]
    assert elapsed < 2.0
    assert leftovers(tmp_path) == []


async def test_an_oversized_upload_without_length_stops_at_the_limit(
    uploads: httpx.AsyncClient, tmp_path: Path
) -> None:
    offered = 40 * MiB
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
        yield head + b"%PDF-1.4\n"
        while pulled < offered:
            pulled += 256 * 1024
            yield bytes(256 * 1024)
        yield b"\r\n--b--\r\n"

    answer = await uploads.post(
        "/upload", content=body(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert answer.status_code == 413
    assert pulled <= 20 * MiB + 256 * 1024
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("content", "content_type", "status", "message"),
    [
        (b"%PDF-1.4", "application/pdf", 415, "multipart/form-data"),
        (b"--b\r\n", "multipart/form-data", 415, "multipart/form-data"),
        (
            b'--b\r\nContent-Disposition: form-data; name="other"; filename="a.pdf"\r\n\r\n'
            b"%PDF-1.4\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
            422,
            "no file in the field 'file'",
        ),
        (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
            b"%PDF-1.4 and then the client stops",
            "multipart/form-data; boundary=b",
            422,
            "ends before its closing boundary",
        ),
        (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
            b"\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
            422,
            "empty",
        ),
        (
            (
                b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
                b"%PDF-1.4\r\n"
            )
            * 2
            + b"--b--\r\n",
            "multipart/form-data; boundary=b",
            422,
            "more than one file",
        ),
        (
            b"".join(
                b'--b\r\nContent-Disposition: form-data; name="n%d"\r\n\r\nx\r\n' % number
                for number in range(20)
            )
            + b"--b--\r\n",
            "multipart/form-data; boundary=b",
            422,
            "more than 16 parts",
        ),
        (
            b'--b\r\nContent-Disposition: form-data; name="file"\r\n'
            + b"X-Long: "
            + b"x" * 10_000
            + b"\r\n\r\nabc\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
            422,
            "cannot be read",
        ),
    ],
    ids=[
        "not-a-form",
        "no-boundary",
        "no-file",
        "cut-short",
        "empty",
        "two-files",
        "parts",
        "header",
    ],
)
async def test_malformed_uploads_are_problems(
    uploads: httpx.AsyncClient,
    tmp_path: Path,
    content: bytes,
    content_type: str,
    status: int,
    message: str,
) -> None:
    answer = await uploads.post("/upload", content=content, headers={"content-type": content_type})
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert message in answer.json()["detail"]
    assert answer.json()["errors"][0]["field"] == "file"
    assert leftovers(tmp_path) == []


async def test_a_disconnect_midway_is_a_problem_and_keeps_nothing(tmp_path: Path) -> None:
    app = upload_app(tmp_path / "incoming", 20 * MiB)
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": head + b"%PDF-1.4\n", "more_body": True},
        {"type": "http.request", "body": bytes(2 * MiB), "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive_message() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/upload",
        "raw_path": b"/upload",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"multipart/form-data; boundary=b"), (b"host", b"t")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive_message, send)
    assert sent[0]["status"] == 422
    assert b"disconnected before the form ended" in sent[1]["body"]
    assert leftovers(tmp_path) == []


def test_the_test_server_is_real_http(s3_server: str) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert isinstance(client.list_buckets()["Buckets"], list)
    assert httpx.get(s3_server + "/", timeout=5).status_code == 200

"""Uploaded files: received to disk while hashed, typed from their content, kept by SHA-256.

A file arrives through `receive_upload` (one file part of a multipart form, read from the
request stream by python-multipart's streaming parser) or `receive` (any byte stream): it is
written to a temporary file while its SHA-256 is computed, and refused with a 413 problem as
soon as one byte more than the limit has arrived. Starlette's own form parsing (`UploadFile`)
is not used for this because it spools the whole body before the handler runs, so an
oversized upload would be read to its end before it could be refused. On any failure, the
client's disconnect or a cancellation included, the temporary file is deleted.

`sniff` names the type from the content, never from the client's name or header: PDF, JPEG,
PNG, and the ZIP-based XLSX, DOCX and OFD, told apart by the names in the ZIP's central
directory, which is read by hand first so that an absurd directory (over `MAX_ZIP_ENTRIES`
entries or `MAX_ZIP_DIRECTORY_BYTES`) is refused before it costs anything.

A `BlobStore` keeps each file under its SHA-256: `LocalStore` in a directory tree (written to
a temporary file beside its final name, fsynced, then renamed, so a crash never leaves part of
a file under its name; `remove_stale` and `remove_stale_uploads` sweep what a crash left in
temporary files), `S3Store` in an S3 bucket. `open_store` picks one from a URL. Blocking
calls run in worker threads (anyio.to_thread), never on the event loop.

S3 goes through boto3 in worker threads: it is AWS's own client, and its managed transfer
(s3transfer) does the multipart upload of large files with retries, without the botocore
version pins the async wrappers (aiobotocore) impose.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol, runtime_checkable
from urllib.parse import parse_qs, unquote, urlsplit

import anyio.to_thread
import structlog
from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from kit.errors import (
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

logger = structlog.get_logger("kit.storage")

CHUNK_BYTES = 64 * 1024
HEAD_BYTES = 4096
# Received bytes are written in batches of this size (one worker-thread call per batch).
WRITE_BATCH_BYTES = 1024 * 1024
# What a multipart form may carry beside its file: boundaries, part headers, small fields.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_FORM_PARTS = 16
MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_DIRECTORY_BYTES = 4 * 1024 * 1024
MAX_CONTENT_TYPES_BYTES = 256 * 1024
# A temporary file this old belongs to no copy or upload still going: a crash left it.
STALE_SECONDS = 3600.0

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
OFD = "application/ofd"
SNIFFED_TYPES = frozenset({PDF, JPEG, PNG, XLSX, DOCX, OFD})

_SHA256 = re.compile(r"[0-9a-f]{64}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EXTENDED_FILENAME = re.compile(r"""filename\*\s*=\s*([^;\s]+)""", re.IGNORECASE)


class BlobNotFound(LookupError):
    """No blob is stored under this SHA-256."""


class StoreUnavailable(ServiceUnavailable):
    """The store did not answer (S3 unreachable or refusing, a local disk full or failing):
    a 503 problem, the cause logged (and chained) but not shown to the client."""

    def __init__(self, store: str) -> None:
        super().__init__("The file store is unavailable; try again later.", store=store)


def check_sha256(sha256: str) -> str:
    """`sha256` when it is 64 lowercase hex digits (what names a blob); ValueError otherwise."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"A blob is named by 64 lowercase hex digits, not {sha256!r}.")
    return sha256


def _blob_name(sha256: str) -> str:
    check_sha256(sha256)
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


@runtime_checkable
class BlobStore(Protocol):
    """Files kept by the SHA-256 (lowercase hex) of their content."""

    async def put_file(self, path: Path, *, sha256: str, content_type: str) -> None:
        """Store the file at `path` under `sha256`; a blob already stored is kept."""

    async def exists(self, sha256: str) -> bool: ...

    async def size(self, sha256: str) -> int | None:
        """The blob's size in bytes, None when it is not stored."""

    def open(self, sha256: str, chunk_size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        """The blob's bytes in chunks (BlobNotFound on the first iteration when missing)."""

    async def delete(self, sha256: str) -> None:
        """Remove the blob (nothing happens when it is not stored)."""

    def describe(self) -> str:
        """Where blobs are kept, for health answers and logs (never a secret)."""


# -- local directory -------------------------------------------------------------------------


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class LocalStore:
    """Blobs as files under `root`/ab/cd/<sha256>."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def path_of(self, sha256: str) -> Path:
        return self.root / _blob_name(sha256)

    def describe(self) -> str:
        return f"file://{self.root}"

    async def put_file(self, path: Path, *, sha256: str, content_type: str) -> None:
        """Copy `path` in (checking its SHA-256 on the way), atomically; the type is not kept
        here (the record naming the blob keeps it)."""
        final = self.path_of(sha256)
        try:
            await anyio.to_thread.run_sync(self._put, Path(path), final, sha256)
        except OSError as error:  # a full or failing disk: nothing is left under the name
            logger.warning("store_unavailable", store=self.describe(), error=str(error))
            raise StoreUnavailable(self.describe()) from error

    @staticmethod
    def _put(source: Path, final: Path, sha256: str) -> None:
        if final.exists():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            dir=final.parent, prefix=".incoming-", suffix=".tmp"
        )
        try:
            digest = hashlib.sha256()
            with os.fdopen(descriptor, "wb") as target, source.open("rb") as origin:
                while chunk := origin.read(WRITE_BATCH_BYTES):
                    digest.update(chunk)
                    target.write(chunk)
                target.flush()
                os.fsync(target.fileno())
            if digest.hexdigest() != sha256:
                raise ValueError(
                    f"The file's SHA-256 is {digest.hexdigest()}, not the {sha256} given."
                )
            os.replace(temporary, final)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        _fsync_directory(final.parent)

    async def exists(self, sha256: str) -> bool:
        return await self.size(sha256) is not None

    async def size(self, sha256: str) -> int | None:
        path = self.path_of(sha256)

        def stat() -> int | None:
            try:
                return path.stat().st_size
            except FileNotFoundError:
                return None

        return await anyio.to_thread.run_sync(stat)

    async def open(self, sha256: str, chunk_size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        path = self.path_of(sha256)
        try:
            handle: BinaryIO = await anyio.to_thread.run_sync(path.open, "rb")
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None
        try:
            while chunk := await anyio.to_thread.run_sync(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def delete(self, sha256: str) -> None:
        path = self.path_of(sha256)
        await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))

    async def remove_stale(self, *, older_than: float = STALE_SECONDS) -> int:
        """Delete the temporary files of copies a crash interrupted (older than
        `older_than` seconds); how many. Blobs themselves are never touched."""
        return await anyio.to_thread.run_sync(
            _remove_stale, self.root, ".incoming-*.tmp", older_than, True
        )


def _remove_stale(directory: Path, pattern: str, older_than: float, recursive: bool) -> int:
    if not directory.is_dir():
        return 0
    cutoff = time.time() - older_than
    removed = 0
    for path in directory.rglob(pattern) if recursive else directory.glob(pattern):
        with suppress(FileNotFoundError):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed


async def remove_stale_uploads(directory: Path, *, older_than: float = STALE_SECONDS) -> int:
    """Delete what uploads a crash interrupted left in `directory` (`receive`'s temporary
    files older than `older_than` seconds: none is that slow); how many."""
    return await anyio.to_thread.run_sync(
        _remove_stale, Path(directory), ".upload-*.part", older_than, False
    )


# -- S3 --------------------------------------------------------------------------------------


def _missing(error: Exception) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(error, ClientError):
        return False
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


class S3Store:
    """Blobs as objects <prefix>/ab/cd/<sha256> of an S3 bucket (AWS or compatible).

    Credentials are the given ones, else boto3's standard chain (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, the shared files, an instance role).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        session = boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
        )
        config = Config(
            connect_timeout=5,
            read_timeout=30,
            retries={"mode": "standard", "max_attempts": 3},
            # An endpoint of its own (MinIO, Ceph, a test server) seldom has a DNS name per
            # bucket: address the bucket in the path there.
            s3={"addressing_style": "path"} if endpoint_url else None,
            # Checksums only when the operation needs one: S3-compatible servers do not all
            # know the newer default ones.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client: S3Client = session.client("s3", endpoint_url=endpoint_url, config=config)
        self._transfer = TransferConfig(
            multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024
        )

    def key_of(self, sha256: str) -> str:
        name = _blob_name(sha256)
        return f"{self.prefix}/{name}" if self.prefix else name

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    async def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs))
        except ClientError as error:
            if _missing(error):
                raise
            logger.warning("store_unavailable", store=self.describe(), error=str(error))
            raise StoreUnavailable(self.describe()) from error
        except BotoCoreError as error:
            logger.warning("store_unavailable", store=self.describe(), error=str(error))
            raise StoreUnavailable(self.describe()) from error

    async def put_file(self, path: Path, *, sha256: str, content_type: str) -> None:
        """Upload `path` (multipart when large, by boto3), unless the blob is already there."""
        key = self.key_of(sha256)
        if await self.size(sha256) is not None:
            return
        await self._call(
            self._client.upload_file,
            str(path),
            self.bucket,
            key,
            ExtraArgs={"ContentType": content_type},
            Config=self._transfer,
        )

    async def exists(self, sha256: str) -> bool:
        return await self.size(sha256) is not None

    async def size(self, sha256: str) -> int | None:
        key = self.key_of(sha256)
        try:
            head = await self._call(self._client.head_object, Bucket=self.bucket, Key=key)
        except Exception as error:
            if _missing(error):
                return None
            raise
        return int(head["ContentLength"])

    async def open(self, sha256: str, chunk_size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        key = self.key_of(sha256)
        try:
            response = await self._call(self._client.get_object, Bucket=self.bucket, Key=key)
        except Exception as error:
            if _missing(error):
                raise BlobNotFound(sha256) from None
            raise
        body = response["Body"]
        try:
            while chunk := await anyio.to_thread.run_sync(body.read, chunk_size):
                yield chunk
        finally:
            body.close()

    async def delete(self, sha256: str) -> None:
        await self._call(self._client.delete_object, Bucket=self.bucket, Key=self.key_of(sha256))


# -- choosing a store ------------------------------------------------------------------------


def open_store(url: str) -> BlobStore:
    """The store a URL names.

    `file:///abs/path`, `file://relative/path` or a plain path: a LocalStore there.
    `s3://[access_key:secret@]bucket[/prefix][?endpoint_url=...&region=...]`: an S3Store.
    Anything else is a ValueError saying what is wrong.
    """
    text = url.strip()
    if not text:
        raise ValueError("The store URL is empty: give file://<path>, a path or s3://<bucket>.")
    if "://" not in text:
        return LocalStore(Path(text))
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.query or parts.fragment:
            raise ValueError(f"A file:// store URL takes no query or fragment: {url!r}.")
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ValueError(f"The file:// store URL names no directory: {url!r}.")
        return LocalStore(Path(path))
    if scheme == "s3":
        return _s3_store(parts.netloc, parts.path, parts.query, url)
    raise ValueError(
        f"Unsupported store URL scheme {parts.scheme!r} in {_redact(url)!r}: "
        "use file://<path>, a plain path or s3://<bucket>/<prefix>."
    )


def _redact(url: str) -> str:
    return re.sub(r"://[^@/]*@", "://***@", url)


def _s3_store(netloc: str, path: str, query: str, url: str) -> S3Store:
    shown = _redact(url)
    credentials, _, bucket = netloc.rpartition("@")
    access_key = secret_key = None
    if credentials:
        user, colon, password = credentials.partition(":")
        if not colon or not user or not password:
            raise ValueError(f"Credentials in an s3:// URL are access_key:secret@: {shown!r}.")
        access_key, secret_key = unquote(user), unquote(password)
    if not _BUCKET.fullmatch(bucket):
        raise ValueError(
            f"The s3:// store URL {shown!r} names no valid bucket ({bucket!r}: 3 to 63 "
            "lowercase letters, digits, dots or hyphens)."
        )
    options = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - {"endpoint_url", "region"})
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {', '.join(unknown)} in the s3:// store URL {shown!r} "
            "(known: endpoint_url, region)."
        )
    for name, values in options.items():
        if len(values) != 1 or not values[0]:
            raise ValueError(f"The s3:// store URL's {name} must be given once, not empty.")
    endpoint_url = options.get("endpoint_url", [None])[0]
    if endpoint_url is not None:
        endpoint = urlsplit(endpoint_url)
        if endpoint.scheme not in {"http", "https"} or not endpoint.netloc:
            raise ValueError(
                f"The s3:// store URL's endpoint_url must be http(s)://host[:port], "
                f"not {endpoint_url!r}."
            )
    return S3Store(
        bucket,
        unquote(path),
        endpoint_url=endpoint_url,
        region=options.get("region", [None])[0],
        access_key=access_key,
        secret_key=secret_key,
    )


# -- content types ---------------------------------------------------------------------------


async def sniff(head: bytes, path: Path | None = None) -> str | None:
    """The content type the bytes show (one of SNIFFED_TYPES), or None for anything else.

    `head` is the start of the content; a ZIP is opened from `path` (in a worker thread), or
    from `head` itself when no path is given.
    """
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"PK\x03\x04"):
        return await anyio.to_thread.run_sync(_sniff_zip, head, path)
    return None


def _sniff_zip(head: bytes, path: Path | None) -> str | None:
    try:
        with path.open("rb") if path is not None else io.BytesIO(head) as source:
            names = _zip_names(source)
            if names is None:
                return None
            folded = {name.lower() for name in names}
            if "ofd.xml" in folded:
                return OFD
            if "xl/workbook.xml" in names:
                return XLSX
            if "word/document.xml" in names:
                return DOCX
            if "[Content_Types].xml" in names:
                source.seek(0)
                with (
                    zipfile.ZipFile(source) as archive,
                    archive.open("[Content_Types].xml") as member,
                ):
                    declared = member.read(MAX_CONTENT_TYPES_BYTES)
                if b"spreadsheetml.sheet.main+xml" in declared:
                    return XLSX
                if b"wordprocessingml.document.main+xml" in declared:
                    return DOCX
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, RuntimeError):
        return None
    except NotImplementedError:  # a compression method zipfile lacks
        return None
    return None


def _zip_names(source: IO[bytes]) -> list[str] | None:
    """The member names of a ZIP from its central directory, read by hand and bounded.

    None when the archive is not one zipfile would read as it stands (data before it, a
    directory that does not add up) or its directory is absurd (MAX_ZIP_ENTRIES,
    MAX_ZIP_DIRECTORY_BYTES).
    """
    source.seek(0, os.SEEK_END)
    size = source.tell()
    tail_length = min(size, 22 + 0xFFFF)
    source.seek(size - tail_length)
    tail = source.read(tail_length)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    _, _, _, on_disk, entries, directory_size, directory_offset, _ = struct.unpack(
        "<4sHHHHIIH", tail[at : at + 22]
    )
    end_record = size - tail_length + at
    zip64 = at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07"
    if not zip64 and (
        0xFFFF in (on_disk, entries) or 0xFFFFFFFF in (directory_size, directory_offset)
    ):
        return None
    if zip64:  # its record holds the counts (the end record may saturate or repeat them)
        (record_offset,) = struct.unpack("<Q", tail[at - 12 : at - 4])
        source.seek(record_offset)
        record = source.read(56)
        if len(record) < 56 or not record.startswith(b"PK\x06\x06"):
            return None
        fields = struct.unpack("<4sQHHIIQQQQ", record)
        on_disk, entries, directory_size, directory_offset = fields[6:10]
        end_record = record_offset
    if max(on_disk, entries) > MAX_ZIP_ENTRIES or directory_size > MAX_ZIP_DIRECTORY_BYTES:
        return None
    if directory_offset + directory_size != end_record:
        return None
    source.seek(directory_offset)
    directory = source.read(directory_size)
    if len(directory) != directory_size:
        return None
    names: list[str] = []
    position = 0
    while position < directory_size:
        if len(names) >= MAX_ZIP_ENTRIES or position + 46 > directory_size:
            return None
        if directory[position : position + 4] != b"PK\x01\x02":
            return None
        flags = struct.unpack_from("<H", directory, position + 8)[0]
        name_length, extra_length, comment_length = struct.unpack_from(
            "<HHH", directory, position + 28
        )
        raw = directory[position + 46 : position + 46 + name_length]
        names.append(raw.decode("utf-8" if flags & 0x800 else "cp437", "replace"))
        position += 46 + name_length + extra_length + comment_length
    if position != directory_size or len(names) != entries:
        return None
    return names


# -- receiving -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """An upload in a temporary file: its size, SHA-256 and first bytes.

    `filename` and `declared_type` are what a multipart part said (never to be trusted for
    the type: `sniff` the content). The caller deletes the file with `discard()` once stored.
    """

    path: Path
    size: int
    sha256: str
    head: bytes
    filename: str | None = None
    declared_type: str | None = None

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def _too_large(field: str, limit: int) -> PayloadTooLarge:
    message = f"The file is larger than the limit of {limit} bytes."
    return PayloadTooLarge(
        message, limit_bytes=limit, errors=[{"field": field, "message": message}]
    )


class _Spool:
    """The temporary file an upload is written to, hashed on the way.

    A disk that refuses it (full, read-only) is a StoreUnavailable problem, not an error."""

    def __init__(self, directory: Path) -> None:
        self.where = f"file://{directory.absolute()}"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            descriptor, name = tempfile.mkstemp(dir=directory, prefix=".upload-", suffix=".part")
        except OSError as error:
            raise self._unavailable(error) from error
        self.path = Path(name)
        self.file = os.fdopen(descriptor, "wb")
        self.digest = hashlib.sha256()

    def _unavailable(self, error: OSError) -> StoreUnavailable:
        logger.warning("store_unavailable", store=self.where, error=str(error))
        return StoreUnavailable(self.where)

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        try:
            self.file.write(data)
        except OSError as error:
            raise self._unavailable(error) from error

    def finish(self) -> None:
        try:
            self.file.close()
        except OSError as error:
            raise self._unavailable(error) from error

    def discard(self) -> None:
        with suppress(OSError):
            self.file.close()
        self.path.unlink(missing_ok=True)


async def receive(
    chunks: AsyncIterator[bytes], *, limit: int, directory: Path, field: str = "file"
) -> Received:
    """Write `chunks` to a temporary file in `directory`, hashing them.

    413 (naming `field`) as soon as more than `limit` bytes arrived, 422 when none did; the
    temporary file is deleted on these and on any other failure (a disconnect, cancellation).
    """
    # Created on the event loop (one quick system call): a temporary file made in a worker
    # thread would be lost, undeleted, if the task were cancelled while waiting for it.
    spool = _Spool(Path(directory))
    size = 0
    head = bytearray()
    batch = bytearray()
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise _too_large(field, limit)
            if len(head) < HEAD_BYTES:
                head += chunk[: HEAD_BYTES - len(head)]
            batch += chunk
            if len(batch) >= WRITE_BATCH_BYTES:
                data = bytes(batch)
                batch.clear()
                await anyio.to_thread.run_sync(spool.write, data)
        if batch:
            await anyio.to_thread.run_sync(spool.write, bytes(batch))
        await anyio.to_thread.run_sync(spool.finish)
        if size == 0:
            raise ValidationFailed.single(field, "The file is empty.")
    except BaseException:
        spool.discard()
        raise
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
    return Received(path=spool.path, size=size, sha256=spool.digest.hexdigest(), head=bytes(head))


async def receive_upload(
    request: Request, *, limit: int, directory: Path, field: str = "file"
) -> Received:
    """The file part `field` of a multipart/form-data request, received as `receive` does.

    The body is parsed as it streams (python-multipart), so memory stays bounded and an
    oversized file is refused once `limit` bytes of it arrived (at once when Content-Length
    already says it is too large). 415 when the request is not multipart/form-data; 422
    naming `field` when the form is malformed or cut short (the client's disconnect too), has
    no such part or two, or the file name has control characters. Other parts are skipped (at most MAX_FORM_PARTS, and
    FORM_OVERHEAD_BYTES of the body beside the file).
    """
    media_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType(
            f"Send the file as multipart/form-data, in the form field {field!r}.",
            errors=[{"field": field, "message": "The body must be multipart/form-data."}],
        )
    body_limit = limit + FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > body_limit:
        raise _too_large(field, limit)
    form = _FormFile(field, boundary, body_limit, limit)
    received = await receive(
        form.chunks(request.stream()), limit=limit, directory=directory, field=field
    )
    return replace(received, filename=form.filename, declared_type=form.declared_type)


class _FormFile:
    """Pulls one part's bytes out of a multipart body as it streams."""

    def __init__(self, field: str, boundary: bytes, body_limit: int, limit: int) -> None:
        self.field = field
        self.boundary = boundary
        self.body_limit = body_limit
        self.limit = limit
        self.filename: str | None = None
        self.declared_type: str | None = None
        self._parts = 0
        self._seen = False
        self._inside = False
        self._ended = False
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._pending: list[bytes] = []

    def _invalid(self, message: str) -> ValidationFailed:
        return ValidationFailed.single(self.field, message)

    async def chunks(self, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        parser = MultipartParser(
            self.boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value_part,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )
        total = 0
        chunks = aiter(stream)
        while True:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except ClientDisconnect:
                # A problem, not an error: nobody is there to read it, but the request ends
                # as a 4xx in the logs rather than as a traceback.
                raise self._invalid("The client disconnected before the form ended.") from None
            total += len(chunk)
            if total > self.body_limit:
                raise _too_large(self.field, self.limit)
            try:
                parser.write(chunk)
            except MultipartParseError as error:
                raise self._invalid(f"The multipart form cannot be read: {error}") from None
            if self._pending:
                pending, self._pending = self._pending, []
                for piece in pending:
                    yield piece
        if not self._ended:
            raise self._invalid("The multipart form ends before its closing boundary.")
        if not self._seen:
            raise self._invalid(f"The form has no file in the field {self.field!r}.")

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_FORM_PARTS:
            raise self._invalid(f"The form has more than {MAX_FORM_PARTS} parts.")
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_part(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.strip().lower()] = self._header_value.strip()
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        name = _decode(options.get(b"name", b""))
        self._inside = name == self.field
        if not self._inside:
            return
        if self._seen:
            raise self._invalid(f"The form has more than one file in the field {self.field!r}.")
        self._seen = True
        self.filename = self._file_name(disposition, options)
        declared = self._headers.get(b"content-type")
        self.declared_type = _decode(declared) if declared else None

    def _file_name(self, disposition: bytes, options: dict[bytes, bytes]) -> str | None:
        if b"filename" in options:
            name = _decode(options[b"filename"])
        else:
            extended = _EXTENDED_FILENAME.search(_decode(disposition))
            if not extended:
                return None
            charset, _, encoded = extended.group(1).strip('"').partition("''")
            try:
                name = unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                raise self._invalid("The file name's filename* cannot be decoded.") from None
        name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
        if _CONTROL.search(name):
            raise self._invalid("The file name has control characters.")
        return name or None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._inside:
            self._pending.append(bytes(data[start:end]))

    def _part_end(self) -> None:
        self._inside = False

    def _end(self) -> None:
        self._ended = True


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")

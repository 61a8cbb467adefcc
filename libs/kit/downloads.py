"""How a file to download is named: `Content-Disposition` with an ASCII fallback name and the
UTF-8 one (RFC 6266, RFC 8187), so that a Chinese file name arrives intact."""

from __future__ import annotations

from urllib.parse import quote


def content_disposition(name: str) -> str:
    """`attachment; filename="…"; filename*=UTF-8''…` for `name`."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in {'"', "\\"} else "_" for c in name
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"

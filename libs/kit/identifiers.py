"""Identifiers shared by every service: record ids, county codes and credit codes."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Collection
from typing import Annotated

from pydantic import AfterValidator, Field

# GB 32100-2015: the 31 characters a unified social credit code may use (no I, O, Z, S, V).
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_VALUE = {char: index for index, char in enumerate(CREDIT_CODE_ALPHABET)}
_REGISTRATION_AUTHORITIES = set("123456789ANY")

# GB/T 2260: the two-digit codes of provincial-level divisions.
PROVINCE_CODES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)
_COUNTY_PATTERN = re.compile(r"^\d{6}$")


_last_millis = 0
_sequence = 0
_id_lock = threading.Lock()
_RANDOM_CHUNK = 4096
"""Random bytes read from the OS at a time: one `os.urandom` per id was a tenth of an
import's server time (py-spy of `bench/brand_registry_bench.py`, 30,000 rows, 2026-12-02)."""
_random = b""
_random_at = 0


def _forget_random() -> None:
    """A forked process reads its own bytes: sharing its parent's would repeat its ids."""
    global _random, _random_at
    _random, _random_at = b"", 0


os.register_at_fork(after_in_child=_forget_random)


def new_id() -> str:
    """A time-ordered UUID (version 7) as text; ids made by one process sort in creation order.

    Within one millisecond the 12 bits after the timestamp count up (RFC 9562, method 1).
    """
    global _last_millis, _sequence, _random, _random_at
    with _id_lock:
        if _random_at == len(_random):
            _random, _random_at = os.urandom(_RANDOM_CHUNK), 0
        random_bits = int.from_bytes(_random[_random_at : _random_at + 8], "big")
        _random_at += 8
        millis = time.time_ns() // 1_000_000
        if millis > _last_millis:
            _last_millis, _sequence = millis, 0
        else:
            _sequence += 1
            if _sequence > 0xFFF:
                _last_millis, _sequence = _last_millis + 1, 0
        millis, sequence = _last_millis, _sequence
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= sequence << 64
    value |= 0b10 << 62
    value |= random_bits & ((1 << 62) - 1)
    hex_ = f"{value:032x}"
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"


def credit_code_check_char(first17: str) -> str:
    """The 18th character of a unified social credit code whose first 17 are given."""
    if len(first17) != 17:
        raise ValueError("expected the first 17 characters")
    try:
        total = sum(_CREDIT_VALUE[c] * w for c, w in zip(first17, CREDIT_CODE_WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not allowed in a credit code") from None
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def credit_code_error(code: str) -> str | None:
    """Why `code` is not a valid unified social credit code, or None when it is."""
    if len(code) != 18:
        return f"must be 18 characters, got {len(code)}"
    bad = sorted({c for c in code if c not in _CREDIT_VALUE})
    if bad:
        return f"contains characters a credit code cannot use: {''.join(bad)}"
    if code[0] not in _REGISTRATION_AUTHORITIES:
        return f"unknown registration authority {code[0]!r}"
    if not code[2:8].isdigit():
        return "characters 3-8 must be the six-digit division code"
    expected = credit_code_check_char(code[:17])
    if code[17] != expected:
        return f"check character is {code[17]!r} but should be {expected!r}"
    return None


def validate_credit_code(value: str) -> str:
    """Normalise and verify a unified social credit code (GB 32100-2015)."""
    code = value.strip().upper()
    error = credit_code_error(code)
    if error:
        raise ValueError(f"not a valid unified social credit code: {error}")
    return code


def county_code_error(code: str, known: Collection[str] | None = None) -> str | None:
    """Why `code` is not a county-level GB/T 2260 code (of the known list), or None."""
    if not _COUNTY_PATTERN.match(code):
        return "must be a six-digit GB/T 2260 division code"
    if code[:2] not in PROVINCE_CODES:
        return f"{code[:2]} is not a provincial division code"
    if code[4:] == "00":
        return "names a prefecture, not a county or district"
    if known is not None and code not in known:
        return f"{code} is not one of the configured counties and districts"
    return None


def validate_county_code(value: str) -> str:
    """Verify the shape of a county-level GB/T 2260 code."""
    code = value.strip()
    error = county_code_error(code)
    if error:
        raise ValueError(error)
    return code


def _county_code_pattern() -> str:
    provinces = "|".join(sorted(PROVINCE_CODES))
    return rf"^\s*(?:{provinces})\d{{2}}(?:0[1-9]|[1-9]\d)\s*$"


def _credit_code_pattern() -> str:
    body = CREDIT_CODE_ALPHABET.replace("ABCDEFGH", "A-H") + CREDIT_CODE_ALPHABET[10:].lower()
    authorities = "".join(sorted(_REGISTRATION_AUTHORITIES)) + "any"
    return rf"^\s*[{authorities}][{body}]\d{{6}}[{body}]{{10}}\s*$"


COUNTY_CODE_PATTERN = _county_code_pattern()
"""What a county code looks like, as the OpenAPI document states it (the province known, not a
prefecture's ``00``); the configured list is checked beyond it."""
CREDIT_CODE_PATTERN = _credit_code_pattern()
"""What a credit code looks like (either case, outer blanks allowed); its check character is
verified beyond it."""

# The patterns are stated in the document only: the validators check the same and more, with
# messages that say what is wrong ("check character is …") where a pattern could only say no.
CreditCode = Annotated[
    str,
    Field(json_schema_extra={"pattern": CREDIT_CODE_PATTERN}),
    AfterValidator(validate_credit_code),
]
CountyCode = Annotated[
    str,
    Field(json_schema_extra={"pattern": COUNTY_CODE_PATTERN}),
    AfterValidator(validate_county_code),
]

import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from kit.identifiers import (
    COUNTY_CODE_PATTERN,
    CREDIT_CODE_ALPHABET,
    CREDIT_CODE_PATTERN,
    CountyCode,
    CreditCode,
    county_code_error,
    credit_code_check_char,
    credit_code_error,
    new_id,
    validate_credit_code,
)

# Published codes of real enterprises (their check characters are part of the record).
VALID_CODES = ["91350100M000100Y43", "91110000600037341L"]


def _with_check(first17: str) -> str:
    return first17 + credit_code_check_char(first17)


@pytest.mark.parametrize("code", VALID_CODES)
def test_published_codes_verify(code: str) -> None:
    assert credit_code_error(code) is None


def test_lowercase_and_surrounding_space_are_normalised() -> None:
    assert validate_credit_code(" 91350100m000100y43 ") == "91350100M000100Y43"


def test_check_character_zero_when_sum_is_a_multiple_of_31() -> None:
    assert credit_code_check_char("0" * 17) == "0"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91350100M000100Y4", "must be 18 characters"),
        ("91350100M000100Y433", "must be 18 characters"),
        ("91350100M000100Y44", "check character"),
        ("91350100M0001O0Y43", "cannot use: O"),
        ("91350100I000100Y43", "cannot use: I"),
        ("Z1350100M000100Y43", "cannot use: Z"),
        ("B1350100M000100Y43", "registration authority"),
        ("913501A0M000100Y43", "six-digit division code"),
    ],
)
def test_each_kind_of_corruption_is_named(code: str, reason: str) -> None:
    error = credit_code_error(code)
    assert error is not None
    assert reason in error


def test_swapping_two_adjacent_characters_is_caught() -> None:
    code = VALID_CODES[0]
    swapped = code[:8] + code[9] + code[8] + code[10:]
    assert swapped != code
    assert credit_code_error(swapped) is not None


@given(
    body=st.text(alphabet=CREDIT_CODE_ALPHABET, min_size=14, max_size=14),
    position=st.integers(min_value=0, max_value=17),
    replacement=st.sampled_from(CREDIT_CODE_ALPHABET),
)
def test_any_single_substitution_is_caught(body: str, position: int, replacement: str) -> None:
    code = _with_check("9" + "1" + "320303"[:6] + body[:9])
    assert credit_code_error(code) is None
    corrupted = code[:position] + replacement + code[position + 1 :]
    if corrupted != code:
        assert credit_code_error(corrupted) is not None


def test_pydantic_type_reports_the_reason() -> None:
    class Model(BaseModel):
        code: CreditCode

    with pytest.raises(ValidationError, match="check character"):
        Model(code="91350100M000100Y44")


@pytest.mark.parametrize(
    ("code", "known", "reason"),
    [
        ("32032", None, "six-digit"),
        ("3203231", None, "six-digit"),
        ("99032300", None, "six-digit"),
        ("990323", None, "not a provincial"),
        ("320300", None, "prefecture"),
        ("320999", {"320323"}, "not one of the configured"),
    ],
)
def test_county_code_errors(code: str, known: set[str] | None, reason: str) -> None:
    error = county_code_error(code, known)
    assert error is not None
    assert reason in error


def test_configured_county_code_passes() -> None:
    assert county_code_error("320323", {"320323"}) is None

    class Model(BaseModel):
        county: CountyCode

    assert Model(county="320323").county == "320323"


def test_ids_are_unique_uuid7_and_sort_by_time() -> None:
    ids = [new_id() for _ in range(200)]
    assert len(set(ids)) == 200
    assert all(len(i) == 36 and i[14] == "7" for i in ids)
    assert ids == sorted(ids)


def test_a_forked_process_makes_ids_of_its_own() -> None:
    """Parent and child, forked with random bytes read ahead, never make the same id."""
    new_id()
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(writer, "".join(new_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(writer)
    ours = {new_id() for _ in range(50)}
    os.waitpid(child, 0)
    with os.fdopen(reader) as pipe:
        theirs = pipe.read()
    theirs_ids = {theirs[i : i + 36] for i in range(0, len(theirs), 36)}
    assert len(theirs_ids) == 50
    # The same millisecond and count may come up in both; the random part differs.
    assert {i[19:] for i in ours}.isdisjoint({i[19:] for i in theirs_ids})


@given(
    st.sampled_from("123456789ANY"),
    st.text(alphabet=CREDIT_CODE_ALPHABET, min_size=1, max_size=1),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.text(alphabet=CREDIT_CODE_ALPHABET, min_size=9, max_size=9),
    st.booleans(),
    st.sampled_from(["", " ", "  "]),
)
def test_the_stated_credit_code_pattern_admits_every_valid_code(
    authority: str, kind: str, division: str, serial: str, lower: bool, blank: str
) -> None:
    code = _with_check(authority + kind + division + serial)
    written = blank + (code.lower() if lower else code) + blank
    assert validate_credit_code(written) == code
    assert re.match(CREDIT_CODE_PATTERN, written)


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ ", min_size=17, max_size=19))
def test_a_code_outside_the_stated_credit_code_pattern_is_refused(text: str) -> None:
    if not re.match(CREDIT_CODE_PATTERN, text):
        assert credit_code_error(text.strip().upper()) is not None


@given(st.text(alphabet="0123456789 ", min_size=5, max_size=8))
def test_the_stated_county_code_pattern_is_what_the_validator_accepts(text: str) -> None:
    assert (re.match(COUNTY_CODE_PATTERN, text) is not None) == (
        county_code_error(text.strip()) is None
    )


def test_the_document_states_both_patterns() -> None:
    class Listing(BaseModel):
        county_code: CountyCode
        enterprise_credit_code: CreditCode

    properties = Listing.model_json_schema()["properties"]
    assert properties["county_code"]["pattern"] == COUNTY_CODE_PATTERN
    assert properties["enterprise_credit_code"]["pattern"] == CREDIT_CODE_PATTERN

"""The demo's evidence PDFs are well-formed, and its corrections are figures the target set
asks those counties for, away from the county the browser test records an incident in."""

from __future__ import annotations

import re
from pathlib import Path

from demo.evidence import CORRECTIONS, evidence_file
from demo.targets import load_target_set
from kit.pdf import plain_pdf

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_the_pdf_cross_reference_table_points_at_each_object() -> None:
    content = plain_pdf(["Evidence (draft)", "back\\slash"])
    assert content.startswith(b"%PDF-1.4\n")
    assert content.endswith(b"%%EOF\n")
    assert len(content) < 1024
    startxref = int(re.search(rb"startxref\n(\d+)\n", content).group(1))  # type: ignore[union-attr]
    assert content[startxref:].startswith(b"xref\n0 6\n")
    offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n", content)]
    for number, offset in enumerate(offsets, start=1):
        assert content[offset:].startswith(b"%d 0 obj" % number)
    stream = re.search(rb"<< /Length (\d+) >>\nstream\n(.*?)\nendstream", content, re.S)
    assert stream is not None
    assert int(stream.group(1)) == len(stream.group(2))
    assert b"(Evidence \\(draft\\)) Tj" in content


def test_an_evidence_file_is_named_in_chinese() -> None:
    value = {"county_code": "320323", "year": 2007, "indicator": "x", "value": 0.9}
    name, content = evidence_file(value, "銅山縣")
    assert name == "銅山縣2007年x證明材料.pdf"
    assert content.startswith(b"%PDF-")


def test_the_corrections_are_reported_figures_of_their_counties() -> None:
    indicators = {i["key"]: i for i in load_target_set(2007, CONFIG)["indicators"]}
    assert len({c.county_code for c in CORRECTIONS}) == len(CORRECTIONS)
    assert "320302" not in {c.county_code for c in CORRECTIONS}
    assert [c.comment is None for c in CORRECTIONS].count(True) == 1
    for correction in CORRECTIONS:
        indicator = indicators[correction.indicator]
        assert indicator["source"] == "reported"
        allocations = indicator.get("allocations") or {}
        assert not allocations or correction.county_code in allocations
        assert indicator["due_on"] == "2008-01-15"

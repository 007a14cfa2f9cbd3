"""The extract's fast paths give exactly what the slow, validated paths give."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from crawlers import grants_gov_extract as extract
from crawlers.normalize import NormalizedOpportunity

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "crawlers" / "extract"
FULL = FIXTURES / "GrantsDBExtract20261101v2.xml"


def _fields() -> list[tuple[str, dict[str, object]]]:
    with extract.open_extract(FULL) as stream:
        return [(kind, extract.element_fields(element)) for kind, element in extract.iter_elements(stream)]


def test_records_built_without_validation_equal_validated_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[tuple[NormalizedOpportunity, dict[str, object]]] = []
    fast = extract._validated

    def capture(values: dict[str, object]) -> NormalizedOpportunity:
        record = fast(values)
        built.append((record, dict(values)))
        return record

    monkeypatch.setattr(extract, "_validated", capture)
    for kind, fields in _fields():
        extract.to_record(kind, fields, "posted", "digest")
    assert len(built) == 4
    for record, values in built:
        validated = NormalizedOpportunity(**values)  # type: ignore[arg-type]
        assert record.model_dump() == validated.model_dump()
        assert record.content_hash() == validated.content_hash()
        assert record.model_fields_set - {"source_hash"} == validated.model_fields_set


def test_values_validation_would_change_or_reject_still_go_through_it() -> None:
    kind, fields = _fields()[0]
    title = "A" * 999 + " tail"  # cut at 1,000 leaves a trailing space that validation strips
    record = extract.to_record(kind, {**fields, "OpportunityTitle": title}, "posted", None)
    assert record.title == "A" * 999
    with pytest.raises(ValidationError):
        extract.to_record(kind, {**fields, "OpportunityID": "9" * 201}, "posted", None)


def test_record_fingerprint_ignores_the_whitespace_after_it(tmp_path: Path) -> None:
    """Whether the text after a record is in the element when it is hashed depends on how far the
    parser had read; the fingerprint must not."""
    spaced = tmp_path / FULL.name
    spaced.write_text(
        FULL.read_text(encoding="utf-8").replace(
            "</OpportunitySynopsisDetail_1_0>", "</OpportunitySynopsisDetail_1_0>\n\n    "
        ),
        encoding="utf-8",
    )
    today = dt.date(2026, 11, 1)

    def fingerprints(path: Path) -> dict[str, str | None]:
        return {r.id: r.source_hash for c in extract.iter_chunks(path, {}, today, True) for r in c.records}

    assert fingerprints(spaced) == fingerprints(FULL) and len(fingerprints(FULL)) == 4

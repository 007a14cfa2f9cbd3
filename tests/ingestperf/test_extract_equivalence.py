"""The byte-level extract reader gives, record for record and field by field, what the lxml reader
and the normalizer of main (``reference_normalizer``) gave: on the fixtures, on a generated extract,
and on files that use every XML form the scanner hands over to lxml."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.bench_ingest import generate
from crawlers import extract_scan
from crawlers import grants_gov_extract as extract
from crawlers.normalize import NormalizedOpportunity
from tests.ingestperf import reference_normalizer as reference

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "crawlers" / "extract"
FULL = FIXTURES / "GrantsDBExtract20261101v2.xml"
TODAY = dt.date(2026, 11, 1)
NS = "http://apply.grants.gov/system/OpportunityDetail-V1.0"


def read(
    path: Path, *, all_agencies: bool = False, share: Callable[[], bool] | None = None
) -> tuple[list[NormalizedOpportunity], list[extract.Chunk]]:
    """Every record the new reader hands on, normalizing shared chunks as the store process does."""
    records: list[NormalizedOpportunity] = []
    chunks = list(extract.iter_chunks(path, {}, TODAY, all_agencies, share=share))
    for chunk in chunks:
        records.extend(extract.read_raw(chunk, path))
        records.extend(chunk.records)
        records.extend(chunk.repeated)
    return records, chunks


def assert_same_records(path: Path, *, all_agencies: bool = False) -> list[NormalizedOpportunity]:
    expected = list(reference.records(path, TODAY, all_agencies))
    for share in (None, lambda: True):
        got, chunks = read(path, all_agencies=all_agencies, share=share)
        assert [r.id for r in got] == [r.id for r in expected]
        for new, old in zip(got, expected, strict=True):
            assert new.model_dump() == old.model_dump(), new.id
            assert new.content_hash() == reference.content_hash(old), new.id
            assert new.source_hash and len(new.source_hash) == 32
        assert all(chunk.fatal is None and chunk.crash is None for chunk in chunks)
    return expected


def test_fixture_extract_gives_the_records_main_gave() -> None:
    assert len(assert_same_records(FULL)) == 3
    assert len(assert_same_records(FULL, all_agencies=True)) == 4


def test_generated_full_schema_extract_gives_the_records_main_gave(tmp_path: Path) -> None:
    path = tmp_path / "GrantsDBExtract_generated.xml"
    generate(path, 1500)
    records = assert_same_records(path)
    assert len(records) > 600 and {r.doc_type for r in records} == {"synopsis", "forecast"}
    assert any(r.description_html and "<p>" in r.description_html for r in records)


def _record(opp_id: str, title: str, *, agency: str = "USDOJ-OJP-BJA", extra: str = "", tag: str = "") -> str:
    tag = tag or "OpportunitySynopsisDetail_1_0"
    return (
        f"<{tag}><OpportunityID>{opp_id}</OpportunityID><OpportunityTitle>{title}</OpportunityTitle>"
        f"<OpportunityNumber>N-{opp_id}</OpportunityNumber><CFDANumbers>16.045</CFDANumbers>"
        f"<EligibleApplicants>01</EligibleApplicants><EligibleApplicants>12</EligibleApplicants>"
        f"<AgencyCode>{agency}</AgencyCode><AgencyName>Bureau &amp; Office</AgencyName>"
        f"<PostDate>06072026</PostDate><CloseDate>07302026</CloseDate><AwardCeiling>2000000</AwardCeiling>"
        f"{extra}<ArchiveDate>08292026</ArchiveDate></{tag.split(' ')[0]}>"
    )


def _write(tmp_path: Path, name: str, body: str, *, prolog: str = "", root: str = "") -> Path:
    path = tmp_path / name
    root = root or f'<Grants xmlns="{NS}">'
    path.write_bytes(f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}{root}\n{body}\n</Grants>\n'.encode())
    return path


PLAIN_BUT_UNUSUAL = [
    _record("1", "Entities &amp;amp; refs &#x2019;&#233;&#38;lt;br&#62; caf\u00e9"),
    _record("2", "Line\r\nends\rand\ttabs", extra="<Description>One\r\n\r\nTwo &lt;b&gt;</Description>"),
    _record("3", "Empty children", extra="<AwardFloor></AwardFloor><Version/><Version> </Version>"),
    _record("4", "Attributes on the record", tag='OpportunitySynopsisDetail_1_0 xmlns:x="urn:x"'),
    _record("5", "Other department", agency="DOI-USGS1"),
    _record("6", "Forecast", tag="OpportunityForecastDetail_1_0", extra="<FiscalYear>2027</FiscalYear>"),
    _record("7", "AgencyCode the word", extra="<Description>An AgencyCode in a text</Description>"),
    _record("1", "Entities again: a second copy of record 1"),
]


def test_unusual_but_plain_records(tmp_path: Path) -> None:
    body = "\n<!-- a comment between records -->\n<?pi between records?>\n".join(PLAIN_BUT_UNUSUAL)
    path = _write(tmp_path, "unusual.xml", body)
    records = assert_same_records(path)
    assert [r.id for r in records] == ["1", "2", "3", "4", "6", "7", "1"]
    read_back, _ = read(path)
    assert "\u2019\u00e9" in read_back[0].title and "\r" not in read_back[1].description


_FIRST = PLAIN_BUT_UNUSUAL[0]
_PREFIXED = _record("11", "x").replace("<", "<g:").replace("<g:/", "</g:")


@pytest.mark.parametrize(
    ("name", "prolog", "root", "body"),
    [
        ("comment_in_record", "", "", _FIRST + _record("8", "x<!-- a -->y") + PLAIN_BUT_UNUSUAL[1]),
        ("cdata", "", "", _FIRST + _record("9", "<![CDATA[</OpportunitySynopsisDetail_1_0>]]>")),
        ("dtd", '<!DOCTYPE Grants [<!ENTITY bja "Justice">]>\n', "", _record("10", "From the &bja;")),
        ("prefixed", "", f'<g:Grants xmlns:g="{NS}">', _PREFIXED),
        ("no_namespace", "", "<Grants>", PLAIN_BUT_UNUSUAL[0] + PLAIN_BUT_UNUSUAL[5]),
        ("other_element", "", "", PLAIN_BUT_UNUSUAL[0] + "<Note><x>1</x></Note>" + PLAIN_BUT_UNUSUAL[1]),
        ("latin1", "", "", PLAIN_BUT_UNUSUAL[0]),
    ],
)
def test_what_the_scanner_does_not_read_is_parsed_by_lxml(
    tmp_path: Path, name: str, prolog: str, root: str, body: str
) -> None:
    path = _write(tmp_path, f"{name}.xml", body, prolog=prolog, root=root)
    if name == "prefixed":
        path.write_text(path.read_text().replace("</Grants>", "</g:Grants>"))
    if name == "latin1":
        text = path.read_text().replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
        path.write_bytes(text.encode("latin-1"))
    records = assert_same_records(path)
    assert records, name


def test_records_without_id_are_reported_not_guessed(tmp_path: Path) -> None:
    body = _record("", "No id") + _record("12", "Fine")
    path = _write(tmp_path, "noid.xml", body)
    records, chunks = read(path)
    assert [r.id for r in records] == ["12"]
    errors = [e for c in chunks for e in c.errors]
    assert len(errors) == 1 and "record 1 of noid.xml has no OpportunityID" in errors[0][1]


def test_truncated_file_is_malformed_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "cut.xml", "\n".join(_record(str(n), f"Record {n}") for n in (1, 2, 3)))
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"Record 3")])
    with pytest.raises(reference.etree.XMLSyntaxError) as oracle:
        list(reference.records(path, TODAY))
    records, chunks = read(path)
    assert [r.id for r in records] == ["1", "2"]
    (fatal,) = [c.fatal for c in chunks if c.fatal]
    assert oracle.value.lineno == 5
    assert fatal[1].startswith("malformed XML in cut.xml after 2 records (line 5): the file ends inside")


@pytest.mark.parametrize(
    "damage",
    ["<Description>&nbsp;</Description>", "<Description>\x01</Description>", "<Title>x</Titel>"],
)
def test_a_damaged_record_stops_the_file_there(tmp_path: Path, damage: str) -> None:
    body = "\n".join([_record("13", "Before"), _record("14", "Bad", extra=damage), _record("15", "After")])
    path = _write(tmp_path, "damaged.xml", body)
    with pytest.raises(reference.etree.XMLSyntaxError):  # the oracle rejects the file there too
        list(reference.records(path, TODAY))
    for share in (None, lambda: True):
        try:
            records, chunks = read(path, share=share)
        except extract.SourceError as exc:  # a shared chunk is parsed by the store process
            assert share is not None and "malformed XML in damaged.xml (opportunity 14)" in exc.message
            continue
        assert [r.id for r in records] == ["13"]
        (fatal,) = [c.fatal for c in chunks if c.fatal]
        assert fatal[1].startswith("malformed XML in damaged.xml after 1 records (line 4): ")


def test_field_text_reads_what_findtext_reads() -> None:
    data = b"<R><A>x &amp;amp; &#x41;</A><B></B><CloseDateExplanation>y</CloseDateExplanation></R>"
    assert extract_scan.field_text(data, b"A") == "x &amp; A"
    assert extract_scan.field_text(data, b"B") == ""
    assert extract_scan.field_text(data, b"CloseDate") is None
    for irregular in (b"<R><A/></R>", b"<R><A x='1'>v</A></R>", b"<R><p:A>v</p:A></R>", b"<R><A>&x;</A></R>"):
        with pytest.raises(extract_scan.Irregular):
            extract_scan.field_text(irregular, b"A")

"""The field parsers and the content hash, made cheaper for the extract, give what main's gave
(``reference_normalizer``), on random text built from the pieces real descriptions are made of."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from crawlers import normalize
from crawlers.normalize import NormalizedOpportunity
from tests.ingestperf import reference_normalizer as reference

_PIECES = [
    "a", "é", " ", "  ", "\t", "\n", "\n\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\u2028",
    "\xa0", "&amp;", "&lt;p&gt;", "<p>", "</p>", "<br/>", "&", "<script>x</script>", "x y", "\n \n", "&#233;",
]  # fmt: skip


def test_text_helpers_equal_mains_on_random_text() -> None:
    rng = random.Random(20261101)
    for _ in range(30_000):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 16)))
        assert normalize.tidy_whitespace(text) == reference.tidy_whitespace(text), repr(text)
        assert normalize.clean_text(text) == reference.clean_text(text), repr(text)
        assert normalize.clean_description(text) == reference.clean_description(text), repr(text)
        assert normalize.sanitize_html(text) == reference.sanitize_html(text), repr(text)


@pytest.mark.parametrize(
    "value",
    ["07302026", "7302026", "13012026", "02302026", "00000000", "\uff11" * 8, "0", "00", "1234567890",
     "123456789012345", "1234567890123456", "12345678901234567890", " 12", "1,000", "$5", "none", "",
     "\u0663\u0664", None, 7, 0],
)  # fmt: skip
def test_field_parsers_equal_mains(value: Any) -> None:
    assert normalize.parse_date(value) == reference.parse_date(value)
    assert normalize.parse_money(value) == reference.parse_money(value)
    assert normalize.parse_count(value) == reference.parse_count(value)


def test_content_hash_equals_mains_with_extra_fields() -> None:
    record = NormalizedOpportunity.model_validate(
        {
            "id": "x1",
            "title": "  A title ",
            "agency": "doj",
            "description": "d",
            "aln": "16.045|16.123",
            "close_date": "2026-07-30",
            "award_ceiling": 5,
            "cost_sharing": True,
            "zeta": {"b": [1, 2]},
            "alpha": dt.date(2026, 1, 2),
        }
    )
    assert record.content_hash() == reference.content_hash(record)

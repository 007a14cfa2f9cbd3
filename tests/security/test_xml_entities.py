"""XML from a source cannot read local files or reach the network (ASVS 5.5.2, XXE)."""

from __future__ import annotations

import io
from pathlib import Path

from crawlers.grants_gov_extract import iter_elements


def test_external_entities_in_an_extract_are_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    xml = f"""<?xml version="1.0"?>
<!DOCTYPE Grants [
  <!ENTITY local SYSTEM "file://{secret}">
  <!ENTITY remote SYSTEM "http://127.0.0.1:9/never">
]>
<Grants><OpportunitySynopsisDetail_1_0>
  <OpportunityTitle>Outreach &local; &remote;</OpportunityTitle>
</OpportunitySynopsisDetail_1_0></Grants>""".encode()
    records = iter_elements(io.BytesIO(xml))
    kind, element = next(records)  # read before the parser clears it on the next step
    text = "".join(element.itertext())
    assert kind == "synopsis" and "Outreach" in text
    assert "TOP-SECRET-CONTENT" not in text
    assert next(records, None) is None

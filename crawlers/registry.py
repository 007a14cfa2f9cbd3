"""The sources ``flask crawl`` knows, by name, and how their records are stored."""

from __future__ import annotations

from crawlers import dol_eta, ed_forecast, grants_gov, grants_gov_extract, ojp, samhsa
from crawlers.runner import SourceSpec

#: Crawled by ``flask crawl`` (all of them when none is named), in this order: Grants.gov first so
#: agency records find the record they merge into.
SOURCES: dict[str, SourceSpec] = {
    spec.name: spec for spec in (grants_gov.SPEC, ojp.SPEC, dol_eta.SPEC, ed_forecast.SPEC, samhsa.SPEC)
}
#: ``flask ingest-extract``.
EXTRACT: SourceSpec = grants_gov_extract.SPEC
#: Records of these sources are merged into the Grants.gov record of the same opportunity number.
PRIMARY_SOURCE = grants_gov.SOURCE
AGENCY_SOURCES: tuple[str, ...] = (ojp.SOURCE, dol_eta.SOURCE, ed_forecast.SOURCE, samhsa.SOURCE)

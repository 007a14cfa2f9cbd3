"""The normalized opportunity record shared by every source, import and export.

``NormalizedOpportunity`` is the JSON-lines contract of DESIGN.md: required ``id``, ``title``,
``agency`` and ``description``; everything else optional; unknown fields are kept (``extra``), not
rejected. Crawlers add the richer fields a source has (HTML description, archive date, forecast
dates, a second deadline) so nothing the source said is lost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Department codes the product catalogues first; others are accepted as contrast.
CORE_DEPARTMENTS = ("DOJ", "DOL", "ED", "HHS")

#: Fields that make up an opportunity's content; the content hash covers exactly these.
CONTENT_FIELDS: tuple[str, ...] = (
    "number",
    "title",
    "agency",
    "sub_agency",
    "agency_name",
    "aln",
    "status",
    "doc_type",
    "post_date",
    "close_date",
    "close_date_note",
    "second_close_date",
    "second_close_date_label",
    "archive_date",
    "forecast_post_date",
    "forecast_award_date",
    "fiscal_year",
    "award_floor",
    "award_ceiling",
    "total_funding",
    "expected_awards",
    "cost_sharing",
    "eligible_applicants",
    "eligibility_codes",
    "funding_instruments",
    "categories",
    "opportunity_category",
    "description",
    "description_html",
    "url",
    "agency_url",
    "contact",
    "version",
)


class NormalizedOpportunity(BaseModel):
    """One funding opportunity as a source describes it, before it meets the store."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=200, description="Stable id within its source.")
    title: str = Field(min_length=1, max_length=1000)
    agency: str = Field(min_length=1, max_length=40, description="Department code: DOJ, DOL, ED, HHS …")
    description: str = Field(description="Plain-text description.")
    source: str = Field(default="import", max_length=500)
    number: str | None = Field(default=None, max_length=200)
    sub_agency: str | None = Field(default=None, max_length=200)
    agency_name: str | None = Field(default=None, max_length=500)
    aln: list[str] = Field(default_factory=list)
    status: str | None = None
    doc_type: str | None = None
    post_date: dt.date | None = None
    close_date: dt.date | None = None
    close_date_note: str | None = None
    second_close_date: dt.date | None = None
    second_close_date_label: str | None = None
    archive_date: dt.date | None = None
    forecast_post_date: dt.date | None = None
    forecast_award_date: dt.date | None = None
    fiscal_year: int | None = None
    award_floor: int | None = Field(default=None, ge=0)
    award_ceiling: int | None = Field(default=None, ge=0)
    total_funding: int | None = Field(default=None, ge=0)
    expected_awards: int | None = Field(default=None, ge=0)
    cost_sharing: bool | None = None
    eligible_applicants: str | None = None
    eligibility_codes: list[str] = Field(default_factory=list)
    funding_instruments: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    opportunity_category: str | None = None
    description_html: str | None = None
    url: str | None = None
    agency_url: str | None = None
    contact: str | None = None
    version: str | None = None

    @field_validator("aln", "eligibility_codes", "funding_instruments", "categories", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        """Accept a single string or null where a list is expected (common in hand-made files)."""
        if value is None:
            return []
        if isinstance(value, str):
            return [part.strip() for part in value.replace("|", ",").split(",") if part.strip()]
        return value

    @field_validator("agency", mode="after")
    @classmethod
    def _upper_department(cls, value: str) -> str:
        return value if value in ("Treasury", "AmeriCorps", "other") else value.upper()

    @field_validator("status", mode="after")
    @classmethod
    def _known_status(cls, value: str | None) -> str | None:
        if value is None:
            return None
        lowered = value.lower()
        if lowered not in ("forecasted", "posted", "closed", "archived"):
            raise ValueError("status must be one of forecasted, posted, closed, archived")
        return lowered

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, value: Any) -> Any:
        return None if value is None else str(value)

    def content(self) -> dict[str, Any]:
        """The content fields as JSON-ready values (dates as ISO strings)."""
        data = self.model_dump(include=set(CONTENT_FIELDS), mode="json")
        return {name: data.get(name) for name in CONTENT_FIELDS}

    def extra_fields(self) -> dict[str, Any]:
        """Fields the contract does not name, kept verbatim."""
        return dict(self.model_extra or {})

    def content_hash(self) -> str:
        """Hash of the content (and kept unknown fields), so unchanged records are skipped cheaply."""
        payload = {"content": self.content(), "extra": self.extra_fields()}
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

"""The program profile the matcher reads (DESIGN.md contract), validated with readable messages."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.models import OrgType, ProgramProfile

#: Limits that keep one request cheap; a longer profile is refused with a message, not truncated.
MAX_DESCRIPTION_CHARS = 8_000
MAX_TEXT_CHARS = 2_000
MAX_LIST_ITEMS = 30
MAX_ITEM_CHARS = 200
ORG_TYPES = tuple(str(t) for t in OrgType)


class MatchingError(ValueError):
    """Bad input to matching (profile, query or filters), with a message a user can act on."""


def _clean(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()


class ProfileInput(BaseModel):
    """A program profile: what a grant writer tells the matcher about their CVI program."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: str = Field(default="profile", max_length=120)
    name: str | None = Field(default=None, max_length=300)
    org_type: OrgType
    city: str | None = Field(default=None, max_length=120)
    state: str | None = Field(default=None, max_length=40)
    program_description: str
    focus_areas: list[str] = Field(default_factory=list)
    populations: list[str] = Field(default_factory=list)
    funding_need: str | None = None
    budget_range: str | None = Field(default=None, max_length=120)

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        return "profile" if value is None else str(value)

    @field_validator("org_type", mode="before")
    @classmethod
    def _known_org_type(cls, value: Any) -> Any:
        if isinstance(value, OrgType):
            return value
        text = _clean(str(value or "")).lower().replace("_", " ").replace("-", " ")
        for org_type in OrgType:
            if text == str(org_type):
                return org_type
        raise ValueError(f"org_type {value!r} is not one of: {', '.join(ORG_TYPES)}")

    @field_validator("program_description", mode="after")
    @classmethod
    def _description(cls, value: str) -> str:
        value = _clean(value)
        if len(re.findall(r"[A-Za-z]{2,}", value)) < 3:
            raise ValueError("describe the program in at least a few words (what you do, for whom)")
        if len(value) > MAX_DESCRIPTION_CHARS:
            raise ValueError(
                f"is {len(value):,} characters; keep it under {MAX_DESCRIPTION_CHARS:,} "
                "(a few paragraphs are plenty)"
            )
        return value

    @field_validator("funding_need", mode="after")
    @classmethod
    def _funding_need(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = _clean(value)
        if len(value) > MAX_TEXT_CHARS:
            raise ValueError(f"is {len(value):,} characters; keep it under {MAX_TEXT_CHARS:,}")
        return value or None

    @field_validator("focus_areas", "populations", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [part for part in re.split(r"[;,\n]", value) if part.strip()]
        return value

    @field_validator("focus_areas", "populations", mode="after")
    @classmethod
    def _list_limits(cls, value: list[str]) -> list[str]:
        items = [_clean(item) for item in value if _clean(item)]
        if len(items) > MAX_LIST_ITEMS:
            raise ValueError(f"has {len(items)} items; keep it to {MAX_LIST_ITEMS} or fewer")
        for item in items:
            if len(item) > MAX_ITEM_CHARS:
                raise ValueError(f"item {item[:40]!r}… is longer than {MAX_ITEM_CHARS} characters")
        return items

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: Any) -> ProfileInput:
        """Validate contract data; raises ``MatchingError`` with one readable line per problem."""
        if isinstance(data, ProfileInput):
            return data
        if not isinstance(data, dict):
            raise MatchingError("a program profile must be a JSON object")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise MatchingError(describe_errors(exc)) from exc

    @classmethod
    def from_model(cls, profile: ProgramProfile) -> ProfileInput:
        """The stored profile as matcher input (validated the same way)."""
        return cls.parse(profile.to_contract())

    # -- what the matcher reads ---------------------------------------------------------------

    def query_text(self) -> str:
        """The words the keyword and semantic searches read: description, focus, populations, need."""
        parts = [self.program_description]
        if self.focus_areas:
            parts.append("Focus: " + "; ".join(self.focus_areas) + ".")
        if self.populations:
            parts.append("Serving: " + "; ".join(self.populations) + ".")
        if self.funding_need:
            parts.append(self.funding_need)
        return " ".join(parts)


def describe_errors(exc: ValidationError) -> str:
    """Pydantic errors as ``field: message`` lines without pydantic's boilerplate."""
    lines = []
    for item in exc.errors():
        where = ".".join(str(p) for p in item["loc"]) or "profile"
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "is required"
        lines.append(f"{where}: {message}")
    return "; ".join(lines)

"""Code tables as StrEnums: one spelling for each value across code, database, API and UI."""

from enum import StrEnum


class OpportunityStatus(StrEnum):
    FORECASTED = "forecasted"
    POSTED = "posted"
    CLOSED = "closed"
    ARCHIVED = "archived"


class Role(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"


class OrgType(StrEnum):
    """Program profile applicant kinds (contract in DESIGN.md)."""

    CITY_GOVERNMENT = "city government"
    COUNTY_GOVERNMENT = "county government"
    NONPROFIT = "nonprofit"
    TRIBAL_GOVERNMENT = "tribal government"
    SCHOOL_DISTRICT = "school district"
    HOSPITAL = "hospital"
    STATE_GOVERNMENT = "state government"
    INSTITUTION_OF_HIGHER_EDUCATION = "institution of higher education"


class PipelineStage(StrEnum):
    INTERESTED = "interested"
    PREPARING = "preparing"
    SUBMITTED = "submitted"
    AWARDED = "awarded"
    DECLINED = "declined"
    NOT_PURSUING = "not pursuing"


class CrawlStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class SubscriptionKind(StrEnum):
    SAVED_SEARCH = "saved search"
    PROGRAM_PROFILE = "program profile"
    TRACKED = "tracked opportunities"


class CurationAction(StrEnum):
    CONFIRM_CVI = "confirm cvi"
    REJECT_CVI = "reject cvi"
    CLEAR_CVI = "clear cvi"
    SET_FIELD = "set field"
    SET_TAGS = "set tags"
    FEATURE = "feature"
    HIDE = "hide"
    MERGE = "merge"
    CREATE = "create"


class JobOutcome(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"

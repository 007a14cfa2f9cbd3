"""Typed SQLAlchemy 2 models; importing this package registers every table on ``Base.metadata``."""

from app.models.account import ApiKey, Invitation, Organization, User, UserSession
from app.models.alerts import AlertSettings
from app.models.audit import AuditEvent
from app.models.catalogue import Agency, AssistanceListing, CviProgram
from app.models.catalogue_state import CatalogueState
from app.models.enums import (
    CrawlStatus,
    CurationAction,
    Frequency,
    JobOutcome,
    OpportunityStatus,
    OrgType,
    OutboxStatus,
    PipelineStage,
    Role,
    SubscriptionKind,
)
from app.models.opportunity import (
    Curation,
    Opportunity,
    OpportunityCode,
    OpportunityVersion,
    PassageEmbedding,
)
from app.models.ops import (
    ApiKeyUsage,
    CrawlError,
    CrawlPayload,
    CrawlRun,
    EmailOutbox,
    HttpCacheEntry,
    JobLock,
    JobRun,
    RateLimitCounter,
)
from app.models.workspace import (
    AlertSubscription,
    MatchDismissal,
    ProgramProfile,
    SavedSearch,
    TrackedOpportunity,
)

__all__ = [
    "Agency",
    "AlertSettings",
    "AlertSubscription",
    "ApiKey",
    "ApiKeyUsage",
    "AssistanceListing",
    "AuditEvent",
    "CatalogueState",
    "CrawlError",
    "CrawlPayload",
    "CrawlRun",
    "CrawlStatus",
    "Curation",
    "CurationAction",
    "CviProgram",
    "EmailOutbox",
    "Frequency",
    "HttpCacheEntry",
    "Invitation",
    "JobLock",
    "JobOutcome",
    "JobRun",
    "MatchDismissal",
    "Opportunity",
    "OpportunityCode",
    "OpportunityStatus",
    "OpportunityVersion",
    "OrgType",
    "Organization",
    "OutboxStatus",
    "PassageEmbedding",
    "PipelineStage",
    "ProgramProfile",
    "RateLimitCounter",
    "Role",
    "SavedSearch",
    "SubscriptionKind",
    "TrackedOpportunity",
    "User",
    "UserSession",
]

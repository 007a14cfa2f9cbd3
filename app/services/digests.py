"""Email digests: one email per user per period with everything new they subscribed to.

A digest combines, for the subscriptions of one frequency (daily or weekly):
- new opportunities matching each saved search (``app.services.search.search``) or program profile
  (the matcher's ``rank()``, with its one-line reason) since the subscription's last digest;
- forecasts that became posted, from the version history, under the same subscriptions;
- changes to the organization's tracked opportunities (deadline moved, amount changed, posted,
  closed, archived, cancelled, gone from the source);
- deadlines coming up, at the subscription's reminder lead times.

Nothing to say → no email. Built digests go to the outbox (unique per user, kind and period) in the
same transaction that advances the subscriptions' ``last_digest_at``, so a crash before the commit
rebuilds the digest and a crash after it finds the row and never builds it twice.

Work shared between users (the candidate set per window, a profile's ranking, an organization's
tracked list) is computed once per run, so a run costs about one matcher call per distinct
subscription target.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import current_app
from pydantic import ValidationError
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import (
    AlertSubscription,
    EmailOutbox,
    Frequency,
    Opportunity,
    OpportunityStatus,
    OpportunityVersion,
    PipelineStage,
    ProgramProfile,
    SavedSearch,
    SubscriptionKind,
    TrackedOpportunity,
    User,
)
from app.services import alert_tokens, outbox, search, subscriptions

log = logging.getLogger(__name__)

DIGEST_KIND = "digest"
#: Opportunities listed per subscription section; the rest are a link away.
SECTION_LIMIT = 15
#: How many top-ranked opportunities of a profile count as its matches.
PROFILE_MATCH_LIMIT = 50
REMINDER_STAGES = {PipelineStage.INTERESTED, PipelineStage.PREPARING}
CHANGE_STAGES = REMINDER_STAGES | {PipelineStage.SUBMITTED, PipelineStage.AWARDED}
MONEY_FIELDS = {
    "award_ceiling": "Award ceiling",
    "award_floor": "Award floor",
    "total_funding": "Total funding",
    "expected_awards": "Expected number of awards",
}


class _AmongCandidates:
    """The keyword index asked only about the window's candidates, each query text once per run.

    Saved searches of many users share their keywords and differ in filters, which ``search()``
    applies in SQL; the keyword hits for the same words among the same candidates are the same.
    """

    def __init__(self, index: search.KeywordSearcher, candidates: set[int]) -> None:
        self.index = index
        self.candidates = candidates
        self._hits: dict[tuple[str, int], Any] = {}

    def search(self, query: str, limit: int = 100, filter_ids: Any = None, *, terms: bool = False) -> Any:
        key = (query, limit)
        if key not in self._hits:
            self._hits[key] = self.index.search(query, limit=limit, filter_ids=self.candidates, terms=terms)
        return self._hits[key]

    def matched_terms(self, query: str, ids: Sequence[int]) -> dict[int, list[str]]:
        return self.index.matched_terms(query, ids)


class ProfileMatcher(Protocol):
    """What the digest needs of the matcher: a profile's best matches with a one-line reason each."""

    def matches(
        self, session: Session, profile: ProgramProfile, limit: int, explain: Collection[int] | None = None
    ) -> list[tuple[int, str]]:
        """The top ``limit`` (id, reason); with ``explain``, reasons only for those ids (others "")."""
        ...

    def prepare(self, session: Session, profiles: Sequence[ProgramProfile]) -> None:
        """Start of a run: get ready to rank these profiles (e.g. embed them in one batch)."""


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    frequency: Frequency
    key: str
    label: str
    local_date: dt.date


def period_for(frequency: Frequency, now: dt.datetime, tz: ZoneInfo) -> Period:
    """The period a run at ``now`` belongs to: the local day, or the local ISO week."""
    local = now.astimezone(tz).date()
    if frequency == Frequency.DAILY:
        return Period(
            frequency, f"daily:{local.isoformat()}", f"{local:%A, %B} {local.day}, {local.year}", local
        )
    iso = local.isocalendar()
    monday = local - dt.timedelta(days=local.weekday())
    return Period(
        frequency,
        f"weekly:{iso.year}-W{iso.week:02d}",
        f"week of {monday:%B} {monday.day}, {monday.year}",
        local,
    )


# --------------------------------------------------------------------------- digest content


@dataclass
class DigestItem:
    opportunity_id: int
    title: str
    number: str | None
    department: str
    agency: str | None
    status: str
    close_date: dt.date | None
    award_ceiling: int | None
    link: str
    reason: str | None = None
    days_left: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class MatchSection:
    label: str
    link: str
    new: list[DigestItem]
    now_posted: list[DigestItem]
    more: int = 0


@dataclass
class Digest:
    user_id: int
    email: str
    name: str | None
    period: Period
    since: dt.datetime
    sections: list[MatchSection]
    changes: list[DigestItem]
    reminders: list[DigestItem]
    subscription_ids: list[int]
    subject: str = ""
    body_text: str = ""
    body_html: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (any(s.new or s.now_posted for s in self.sections) or self.changes or self.reminders)

    @property
    def new_count(self) -> int:
        return len({i.opportunity_id for s in self.sections for i in s.new})

    @property
    def posted_count(self) -> int:
        return len({i.opportunity_id for s in self.sections for i in s.now_posted})


def money(value: int | None) -> str:
    return "not stated" if value is None else f"${value:,}"


def day(value: dt.date | None) -> str:
    return "not set" if value is None else f"{value:%b} {value.day}, {value.year}"


def _parse_day(value: Any) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def describe_changes(changes: Mapping[str, Any]) -> list[str]:
    """Plain-language notes for one version's changes, most important first."""
    notes: list[str] = []
    rest: list[str] = []
    for name, change in changes.items():
        old, new = (change or {}).get("old"), (change or {}).get("new")
        if name == "close_date":
            before, after = _parse_day(old), _parse_day(new)
            if before and after:
                direction = "extended" if after > before else "moved earlier"
                notes.append(f"Deadline {direction}: {day(before)} → {day(after)}")
            elif after:
                notes.append(f"Deadline set: {day(after)}")
            else:
                notes.append(f"Deadline removed (was {day(before)})")
        elif name in MONEY_FIELDS:
            label = MONEY_FIELDS[name]
            if name == "expected_awards":
                notes.append(f"{label} changed: {old if old is not None else 'not stated'} → {new}")
            else:
                notes.append(
                    f"{label} changed: {money(old if isinstance(old, int) else None)} → "
                    f"{money(new if isinstance(new, int) else None)}"
                )
        elif name == "status":
            notes.append(
                {
                    "posted": "Now posted: applications are open" if old == "forecasted" else "Posted again",
                    "closed": "Closed to applications",
                    "archived": "Archived: no longer accepting applications",
                    "forecasted": "Moved back to forecast",
                }.get(str(new), f"Status changed to {new}")
            )
        elif name == "vanished":
            if new:
                notes.append("No longer listed by the source: it may have been cancelled")
            else:
                notes.append("Listed again by the source")
        elif name in ("title", "close_date_note") and isinstance(new, str) and "cancel" in new.lower():
            notes.append("Marked cancelled by the agency")
        else:
            rest.append(name.replace("_", " "))
    if rest:
        notes.append("Also updated: " + ", ".join(sorted(rest)))
    return notes


# --------------------------------------------------------------------------- builder


class DigestBuilder:
    """Builds digests for many users in one run, sharing the work their subscriptions have in common."""

    def __init__(
        self,
        session: Session,
        *,
        base_url: str,
        secret_key: str,
        mail_from: str,
        unsubscribe_address: str | None,
        now: dt.datetime,
        tz: ZoneInfo,
        matcher: ProfileMatcher | None = None,
        keyword: search.KeywordSearcher | None = None,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.secret_key = secret_key
        self.mail_from = mail_from
        self.unsubscribe_address = unsubscribe_address or _address(mail_from)
        self.now = now
        self.tz = tz
        self.today = now.astimezone(tz).date()
        self.matcher = matcher
        self.keyword = keyword
        self.matcher_seconds = 0.0
        self.matcher_calls = 0
        self._window: dict[dt.datetime, tuple[set[int], set[int], dict[int, list[dict[str, Any]]]]] = {}
        self._search: dict[tuple[str, dt.datetime], tuple[list[int], int, dict[int, list[str]]]] = {}
        self._ranked: dict[tuple[int, frozenset[int]], list[tuple[int, str]]] = {}
        self._keyword: dict[dt.datetime, _AmongCandidates] = {}
        self._tracked: dict[int, list[tuple[TrackedOpportunity, int]]] = {}
        self._opportunities: dict[int, Opportunity] = {}
        self._warned_no_matcher = False

    # -- shared lookups ------------------------------------------------------------------

    def prepare_profiles(self, profiles: Sequence[ProgramProfile]) -> None:
        """Let the matcher prepare every profile this run ranks at once (counted as matcher time)."""
        prepare = getattr(self.matcher, "prepare", None)
        if prepare is None or not profiles:
            return
        started = time.perf_counter()
        try:
            prepare(self.session, profiles)
        except ValueError as exc:  # a profile the matcher cannot read is skipped later, with its reason
            log.warning("program profiles not prepared", extra={"error": str(exc)})
        self.matcher_seconds += time.perf_counter() - started

    def _window_data(self, since: dt.datetime) -> tuple[set[int], set[int], dict[int, list[dict[str, Any]]]]:
        """(new ids, forecasts posted ids, versions by opportunity) in (since, now]."""
        cached = self._window.get(since)
        if cached is not None:
            return cached
        visible = and_(
            Opportunity.hidden.is_(False),
            Opportunity.merged_into_id.is_(None),
            Opportunity.vanished_at.is_(None),
        )
        new_ids = set(
            self.session.scalars(
                select(Opportunity.id).where(
                    visible, Opportunity.first_seen > since, Opportunity.first_seen <= self.now
                )
            )
        )
        versions: dict[int, list[dict[str, Any]]] = defaultdict(list)
        posted: set[int] = set()
        rows = self.session.execute(
            select(OpportunityVersion.opportunity_id, OpportunityVersion.changes)
            .where(OpportunityVersion.changed_at > since, OpportunityVersion.changed_at <= self.now)
            .order_by(OpportunityVersion.id)
        )
        for opportunity_id, changes in rows:
            versions[opportunity_id].append(changes or {})
            status = (changes or {}).get("status") or {}
            if (
                status.get("old") == OpportunityStatus.FORECASTED
                and status.get("new") == OpportunityStatus.POSTED
            ):
                posted.add(opportunity_id)
        posted -= new_ids
        if posted:
            posted &= set(
                self.session.scalars(select(Opportunity.id).where(visible, Opportunity.id.in_(posted)))
            )
        result = (new_ids, posted, dict(versions))
        self._window[since] = result
        return result

    def _load(self, ids: Iterable[int]) -> None:
        missing = [i for i in ids if i not in self._opportunities]
        for start in range(0, len(missing), 500):
            for opportunity in self.session.scalars(
                select(Opportunity).where(Opportunity.id.in_(missing[start : start + 500]))
            ):
                self._opportunities[opportunity.id] = opportunity

    def _item(self, opportunity_id: int, reason: str | None = None) -> DigestItem:
        opportunity = self._opportunities[opportunity_id]
        days_left = (opportunity.close_date - self.today).days if opportunity.close_date else None
        return DigestItem(
            opportunity_id=opportunity.id,
            title=opportunity.title,
            number=opportunity.number,
            department=opportunity.department,
            agency=opportunity.agency_name or opportunity.sub_agency,
            status=str(opportunity.status),
            close_date=opportunity.close_date,
            award_ceiling=opportunity.award_ceiling,
            link=f"{self.base_url}/opportunities/{opportunity.id}",
            reason=reason,
            days_left=days_left,
        )

    # -- sections --------------------------------------------------------------------------

    def _since(self, subscription: AlertSubscription) -> dt.datetime:
        return subscription.last_digest_at or subscription.created_at

    def _section(
        self, label: str, link: str, hits: list[tuple[int, str | None]], new_ids: set[int], posted: set[int]
    ) -> MatchSection | None:
        if not hits:
            return None
        self._load(i for i, _ in hits[:SECTION_LIMIT])
        shown = hits[:SECTION_LIMIT]
        return MatchSection(
            label=label,
            link=link,
            new=[self._item(i, r) for i, r in shown if i in new_ids],
            now_posted=[self._item(i, r) for i, r in shown if i in posted],
            more=max(0, len(hits) - SECTION_LIMIT),
        )

    def saved_search_section(
        self, subscription: AlertSubscription, saved: SavedSearch
    ) -> MatchSection | None:
        since = self._since(subscription)
        new_ids, posted, _ = self._window_data(since)
        candidates = new_ids | posted
        if not candidates:
            return None
        query = {k: v for k, v in (saved.query or {}).items() if k not in ("page", "per_page", "sort")}
        link = f"{self.base_url}/search?{urlencode(query, doseq=True)}"
        cache_key = (repr(sorted(query.items())), since)
        cached = self._search.get(cache_key)
        if cached is None:
            try:
                params = search.SearchParams.model_validate({**query, "per_page": 100, "sort": "close_date"})
            except ValidationError:
                log.warning("saved search no longer valid", extra={"saved_search_id": saved.id})
                return None
            keyword = None
            if self.keyword is not None:
                keyword = self._keyword.setdefault(since, _AmongCandidates(self.keyword, candidates))
            started = time.perf_counter()
            result = search.search(
                self.session,
                params,
                keyword=keyword,
                today=self.today,
                with_facets=False,
                only_ids=candidates,
            )
            self.matcher_seconds += time.perf_counter() - started
            self.matcher_calls += 1
            for opportunity in result.items:
                self._opportunities[opportunity.id] = opportunity
            cached = ([o.id for o in result.items], result.total, result.matched_terms)
            self._search[cache_key] = cached
        ids, total, matched = cached
        hits: list[tuple[int, str | None]] = [
            (i, f"Matches {', '.join(matched[i][:4])}" if matched.get(i) else None) for i in ids
        ]
        section = self._section(f"Saved search “{saved.name}”", link, hits, new_ids, posted)
        if section is not None:
            section.more = max(section.more, total - SECTION_LIMIT)
        return section

    def profile_section(
        self, subscription: AlertSubscription, profile: ProgramProfile
    ) -> MatchSection | None:
        if self.matcher is None:
            if not self._warned_no_matcher:
                log.warning("matcher not installed: program profile alerts skipped")
                self._warned_no_matcher = True
            return None
        since = self._since(subscription)
        new_ids, posted, _ = self._window_data(since)
        candidates = new_ids | posted
        if not candidates:
            return None
        # One ranking per profile and set of new opportunities (nearly always one per run): only those
        # can appear in the digest, so only they are explained.
        key = (profile.id, frozenset(candidates))
        ranked = self._ranked.get(key)
        if ranked is None:
            started = time.perf_counter()
            try:
                ranked = self.matcher.matches(self.session, profile, PROFILE_MATCH_LIMIT, explain=candidates)
            except ValueError as exc:  # the matcher refuses a profile it cannot read: skip, say why
                log.warning(
                    "program profile not matched", extra={"profile_id": profile.id, "error": str(exc)}
                )
                ranked = []
            self.matcher_seconds += time.perf_counter() - started
            self.matcher_calls += 1
            self._ranked[key] = ranked
        hits: list[tuple[int, str | None]] = [(i, reason) for i, reason in ranked if i in candidates]
        link = f"{self.base_url}/profiles/{profile.id}/matches"
        return self._section(f"Program profile “{profile.name}”", link, hits, new_ids, posted)

    def _tracked_of(self, organization_id: int) -> list[tuple[TrackedOpportunity, int]]:
        cached = self._tracked.get(organization_id)
        if cached is None:
            rows = list(
                self.session.scalars(
                    select(TrackedOpportunity).where(TrackedOpportunity.organization_id == organization_id)
                )
            )
            cached = [(row, row.opportunity_id) for row in rows]
            self._load(i for _, i in cached)
            self._tracked[organization_id] = cached
        return cached

    def tracked_sections(
        self, subscription: AlertSubscription, organization_id: int
    ) -> tuple[list[DigestItem], list[DigestItem]]:
        """(changes, reminders) for the organization's tracked opportunities."""
        since = self._since(subscription)
        _, _, versions = self._window_data(since)
        since_day = since.astimezone(self.tz).date()
        lead_times = sorted(set(subscription.reminder_days or subscriptions.DEFAULT_REMINDER_DAYS))
        first_digest = subscription.last_digest_at is None
        changes: list[DigestItem] = []
        reminders: list[DigestItem] = []
        for tracked, opportunity_id in self._tracked_of(organization_id):
            stage = PipelineStage(tracked.stage)
            opportunity = self._opportunities[opportunity_id]
            if stage in CHANGE_STAGES and versions.get(opportunity_id):
                notes = [n for changes_ in versions[opportunity_id] for n in describe_changes(changes_)]
                if notes:
                    item = self._item(opportunity_id)
                    item.notes = list(dict.fromkeys(notes))
                    changes.append(item)
            close = opportunity.close_date
            if stage not in REMINDER_STAGES or close is None or close < self.today:
                continue
            if opportunity.vanished_at is not None or opportunity.status in (
                OpportunityStatus.CLOSED,
                OpportunityStatus.ARCHIVED,
            ):
                continue
            days_left = (close - self.today).days
            if first_digest:
                due = bool(lead_times) and days_left <= max(lead_times)
            else:
                due = any(since_day < close - dt.timedelta(days=lead) <= self.today for lead in lead_times)
            if due:
                reminders.append(self._item(opportunity_id))
        reminders.sort(key=lambda i: (i.close_date or self.today, i.opportunity_id))
        return changes, reminders

    # -- one user ----------------------------------------------------------------------------

    def build(
        self,
        user: User,
        period: Period,
        subs: list[AlertSubscription],
        searches: Mapping[int, SavedSearch],
        profiles: Mapping[int, ProgramProfile],
    ) -> Digest:
        sections: list[MatchSection] = []
        changes: list[DigestItem] = []
        reminders: list[DigestItem] = []
        for subscription in subs:
            if subscription.kind == SubscriptionKind.SAVED_SEARCH:
                saved = searches.get(subscription.saved_search_id or 0)
                section = self.saved_search_section(subscription, saved) if saved else None
                if section:
                    sections.append(section)
            elif subscription.kind == SubscriptionKind.PROGRAM_PROFILE:
                profile = profiles.get(subscription.profile_id or 0)
                if profile is not None and profile.organization_id == user.organization_id:
                    section = self.profile_section(subscription, profile)
                    if section:
                        sections.append(section)
            elif subscription.kind == SubscriptionKind.TRACKED and user.organization_id is not None:
                found_changes, found_reminders = self.tracked_sections(subscription, user.organization_id)
                changes += [
                    c for c in found_changes if c.opportunity_id not in {x.opportunity_id for x in changes}
                ]
                reminders += [
                    r
                    for r in found_reminders
                    if r.opportunity_id not in {x.opportunity_id for x in reminders}
                ]
        since = min((self._since(s) for s in subs), default=self.now)
        return Digest(
            user_id=user.id,
            email=user.email,
            name=user.name,
            period=period,
            since=since,
            sections=[s for s in sections if s.new or s.now_posted],
            changes=changes,
            reminders=reminders,
            subscription_ids=[s.id for s in subs],
        )

    def render(self, digest: Digest) -> Digest:
        """Fill subject, both bodies and the list headers (RFC 2369 and RFC 8058 one-click)."""
        token = alert_tokens.unsubscribe_token(self.secret_key, digest.user_id)
        unsubscribe_url = f"{self.base_url}/alerts/unsubscribe/{token}"
        context = {
            "digest": digest,
            "base_url": self.base_url,
            "preferences_url": f"{self.base_url}/alerts/preferences",
            "unsubscribe_url": unsubscribe_url,
            "money": money,
            "day": day,
        }
        env = current_app.jinja_env
        digest.subject = _subject(digest)
        digest.body_text = env.get_template("email/digest.txt").render(context)
        digest.body_html = env.get_template("email/digest.html").render(context)
        digest.headers = {
            "List-Unsubscribe": f"<mailto:{self.unsubscribe_address}?subject=unsubscribe%20{token}>, "
            f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": f"CVI Funding Finder digests <digests.{outbox.message_domain(self.mail_from)}>",
            "Auto-Submitted": "auto-generated",
        }
        return digest


def _address(mail_from: str) -> str:
    return mail_from.rsplit("<", 1)[-1].rstrip(">").strip()


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _subject(digest: Digest) -> str:
    parts = []
    if digest.new_count:
        parts.append(_plural(digest.new_count, "new opportunity").replace("opportunitys", "opportunities"))
    if digest.posted_count:
        parts.append(_plural(digest.posted_count, "forecast") + " now open")
    if digest.changes:
        parts.append(_plural(len(digest.changes), "tracked change"))
    if digest.reminders:
        parts.append(_plural(len(digest.reminders), "deadline") + " coming up")
    prefix = "Your daily" if digest.period.frequency == Frequency.DAILY else "Your weekly"
    return f"{prefix} CVI funding digest: {', '.join(parts)}"


# --------------------------------------------------------------------------- a run


@dataclass
class DigestRun:
    period: Period
    users: int = 0
    built: int = 0
    empty: int = 0
    already: int = 0
    enqueued: int = 0
    digests: list[Digest] = field(default_factory=list)
    build_seconds: float = 0.0
    matcher_seconds: float = 0.0
    matcher_calls: int = 0
    delivery: outbox.DeliveryReport | None = None


def build_digests(
    session: Session,
    builder: DigestBuilder,
    frequency: Frequency,
    *,
    dry_run: bool = False,
    user_email: str | None = None,
    keep: bool = False,
) -> DigestRun:
    """Build this period's digests and put them in the outbox (``dry_run``: build only, write nothing).

    Each user is committed on their own: the outbox row and the advanced ``last_digest_at`` together.
    """
    started = time.perf_counter()
    period = period_for(frequency, builder.now, builder.tz)
    run = DigestRun(period)
    statement = (
        select(AlertSubscription, User)
        .join(User, User.id == AlertSubscription.user_id)
        .where(
            AlertSubscription.active.is_(True),
            AlertSubscription.frequency == frequency,
            User.active.is_(True),
        )
        .order_by(User.id, AlertSubscription.id)
    )
    if user_email:
        statement = statement.where(User.email == user_email.strip().lower())
    by_user: dict[int, tuple[User, list[AlertSubscription]]] = {}
    for subscription, user in session.execute(statement):
        by_user.setdefault(user.id, (user, []))[1].append(subscription)
    run.users = len(by_user)
    done = set(
        session.scalars(
            select(EmailOutbox.user_id).where(
                EmailOutbox.kind == DIGEST_KIND, EmailOutbox.period_key == period.key
            )
        )
    )
    search_ids = {s.saved_search_id for _, subs in by_user.values() for s in subs if s.saved_search_id}
    profile_ids = {s.profile_id for _, subs in by_user.values() for s in subs if s.profile_id}
    searches = _by_id(session, SavedSearch, search_ids)
    profiles = _by_id(session, ProgramProfile, profile_ids)
    builder.prepare_profiles(list(profiles.values()))
    if not dry_run:
        session.commit()  # profile vectors embedded for this run serve the next runs too
    for user_id, (user, subs) in by_user.items():
        if user_id in done:
            run.already += 1
            continue
        digest = builder.build(user, period, subs, searches, profiles)
        if digest.empty:
            run.empty += 1
            continue
        builder.render(digest)
        run.built += 1
        if keep or dry_run:
            run.digests.append(digest)
        if dry_run:
            continue
        row = outbox.enqueue(
            session,
            user_id=user.id,
            to_address=user.email,
            kind=DIGEST_KIND,
            period_key=period.key,
            subject=digest.subject,
            body_text=digest.body_text,
            body_html=digest.body_html,
            headers=digest.headers,
            mail_from=builder.mail_from,
            now=builder.now,
        )
        if row is None:
            session.rollback()
            run.already += 1
            continue
        for subscription in subs:
            subscription.last_digest_at = builder.now
        session.commit()
        run.enqueued += 1
    if dry_run:
        session.rollback()
    run.build_seconds = time.perf_counter() - started
    run.matcher_seconds = builder.matcher_seconds
    run.matcher_calls = builder.matcher_calls
    log.info(
        "digests built",
        extra={
            "period": period.key,
            "users": run.users,
            "built": run.built,
            "empty": run.empty,
            "already": run.already,
            "dry_run": dry_run,
            "seconds": round(run.build_seconds, 3),
        },
    )
    return run


def _by_id(session: Session, model: Any, ids: set[int]) -> dict[int, Any]:
    found: dict[int, Any] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), 500):
        for row in session.scalars(select(model).where(model.id.in_(ordered[start : start + 500]))):
            found[row.id] = row
    return found


def cancel_if_unsubscribed(session: Session, row: EmailOutbox) -> str | None:
    """Outbox hook: a digest whose recipient has turned every alert off since it was built is not sent."""
    if (
        row.kind == DIGEST_KIND
        and row.user_id is not None
        and not subscriptions.has_active(session, row.user_id)
    ):
        return "cancelled: the recipient unsubscribed before it was sent"
    return None


def builder_from_config(
    session: Session,
    config: Mapping[str, Any],
    *,
    now: dt.datetime | None = None,
    matcher: ProfileMatcher | None = None,
    keyword: search.KeywordSearcher | None = None,
) -> DigestBuilder:
    return DigestBuilder(
        session,
        base_url=config["BASE_URL"],
        secret_key=config["SECRET_KEY"],
        mail_from=config["MAIL_FROM"],
        unsubscribe_address=config.get("MAIL_UNSUBSCRIBE_ADDRESS"),
        now=now or utcnow(),
        tz=ZoneInfo(config["DIGEST_TIMEZONE"]),
        matcher=matcher,
        keyword=keyword,
    )


def send_digests(
    session: Session,
    config: Mapping[str, Any],
    frequency: Frequency,
    *,
    sender: outbox.Sender | None,
    dry_run: bool = False,
    user_email: str | None = None,
    now: dt.datetime | None = None,
    matcher: ProfileMatcher | None = None,
    keyword: search.KeywordSearcher | None = None,
) -> DigestRun:
    """Build the period's digests into the outbox, then deliver whatever is due (unless a dry run)."""
    builder = builder_from_config(session, config, now=now, matcher=matcher, keyword=keyword)
    run = build_digests(session, builder, frequency, dry_run=dry_run, user_email=user_email)
    if not dry_run and sender is not None:
        run.delivery = outbox.deliver_due(
            session,
            sender,
            mail_from=config["MAIL_FROM"],
            policy=outbox.RetryPolicy.from_config(config),
            cancel_check=cancel_if_unsubscribed,
        )
    return run

"""Alert subscriptions: what a user wants to hear about, how often, and how far ahead to be reminded.

A user subscribes to one of their saved searches or one of their organization's program profiles
(new matches), or to the organization's tracked opportunities (changes and deadline reminders).
Subscribing again to the same thing reactivates and updates the existing subscription, so a user
never gets the same section twice in a digest.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import (
    AlertSettings,
    AlertSubscription,
    Frequency,
    ProgramProfile,
    SavedSearch,
    SubscriptionKind,
    User,
)

DEFAULT_REMINDER_DAYS: tuple[int, ...] = (30, 14, 7, 2)
MAX_REMINDERS = 8
TRACKED_KEY = "tracked"


class SubscriptionError(ValueError):
    """Bad input or a subscription that is not the user's; the message can be shown as it is."""


@dataclass(frozen=True)
class Target:
    """Something a user can subscribe to; ``key`` is ``search:ID``, ``profile:ID`` or ``tracked``."""

    key: str
    label: str
    kind: SubscriptionKind


@dataclass(frozen=True)
class SubscriptionRow:
    subscription: AlertSubscription
    label: str

    @property
    def key(self) -> str:
        return target_key(self.subscription)


def parse_reminder_days(text: str | None) -> list[int]:
    """ "30, 14, 7, 2" → [30, 14, 7, 2]; empty → the defaults. Raises ``SubscriptionError``."""
    text = (text or "").strip()
    if not text:
        return list(DEFAULT_REMINDER_DAYS)
    parts = [p for p in re.split(r"[,\s;]+", text) if p]
    days: set[int] = set()
    for part in parts:
        if not part.isdigit():
            raise SubscriptionError(
                f"Reminder days must be whole numbers of days, like 30, 14, 7 (not {part!r})."
            )
        value = int(part)
        if not 0 <= value <= 365:
            raise SubscriptionError("Reminder days must be between 0 and 365 days before the close date.")
        days.add(value)
    if len(days) > MAX_REMINDERS:
        raise SubscriptionError(f"At most {MAX_REMINDERS} reminders per subscription.")
    return sorted(days, reverse=True)


def target_key(subscription: AlertSubscription) -> str:
    if subscription.kind == SubscriptionKind.SAVED_SEARCH:
        return f"search:{subscription.saved_search_id}"
    if subscription.kind == SubscriptionKind.PROGRAM_PROFILE:
        return f"profile:{subscription.profile_id}"
    return TRACKED_KEY


def available_targets(session: Session, user: User) -> list[Target]:
    """The user's saved searches, the organization's program profiles, and its tracked list."""
    targets = [
        Target(f"search:{s.id}", f"Saved search: {s.name}", SubscriptionKind.SAVED_SEARCH)
        for s in session.scalars(
            select(SavedSearch).where(SavedSearch.user_id == user.id).order_by(SavedSearch.name)
        )
    ]
    if user.organization_id is not None:
        profiles = session.scalars(
            select(ProgramProfile)
            .where(ProgramProfile.organization_id == user.organization_id)
            .order_by(ProgramProfile.name)
        )
        targets += [
            Target(f"profile:{p.id}", f"Program profile: {p.name}", SubscriptionKind.PROGRAM_PROFILE)
            for p in profiles
        ]
        targets.append(
            Target(
                TRACKED_KEY, "Tracked opportunities: changes and deadline reminders", SubscriptionKind.TRACKED
            )
        )
    return targets


def subscriptions_of(session: Session, user: User) -> list[SubscriptionRow]:
    """The user's subscriptions with a readable label, active ones first."""
    subscriptions = list(
        session.scalars(
            select(AlertSubscription)
            .where(AlertSubscription.user_id == user.id)
            .order_by(AlertSubscription.id)
        )
    )
    searches = {
        s.id: s.name for s in session.scalars(select(SavedSearch).where(SavedSearch.user_id == user.id))
    }
    profile_ids = [s.profile_id for s in subscriptions if s.profile_id is not None]
    profiles = (
        {
            p.id: p.name
            for p in session.scalars(select(ProgramProfile).where(ProgramProfile.id.in_(profile_ids)))
        }
        if profile_ids
        else {}
    )
    rows = []
    for subscription in subscriptions:
        if subscription.kind == SubscriptionKind.SAVED_SEARCH:
            label = f"Saved search: {searches.get(subscription.saved_search_id or 0, 'deleted')}"
        elif subscription.kind == SubscriptionKind.PROGRAM_PROFILE:
            label = f"Program profile: {profiles.get(subscription.profile_id or 0, 'deleted')}"
        else:
            label = "Tracked opportunities: changes and deadline reminders"
        rows.append(SubscriptionRow(subscription, label))
    rows.sort(key=lambda r: (not r.subscription.active, r.subscription.id))
    return rows


def _resolve(session: Session, user: User, key: str) -> tuple[SubscriptionKind, int | None, int | None]:
    """(kind, saved_search_id, profile_id) for a target key the user may subscribe to."""
    if key == TRACKED_KEY:
        if user.organization_id is None:
            raise SubscriptionError("Join an organization to get alerts about tracked opportunities.")
        return SubscriptionKind.TRACKED, None, None
    prefix, _, raw_id = key.partition(":")
    if not raw_id.isdigit():
        raise SubscriptionError("Choose a saved search, a program profile or your tracked opportunities.")
    if prefix == "search":
        search = session.get(SavedSearch, int(raw_id))
        if search is None or search.user_id != user.id:
            raise SubscriptionError("That saved search does not exist.")
        return SubscriptionKind.SAVED_SEARCH, search.id, None
    if prefix == "profile":
        profile = session.get(ProgramProfile, int(raw_id))
        if profile is None or user.organization_id is None or profile.organization_id != user.organization_id:
            raise SubscriptionError("That program profile does not exist.")
        return SubscriptionKind.PROGRAM_PROFILE, None, profile.id
    raise SubscriptionError("Choose a saved search, a program profile or your tracked opportunities.")


def subscribe(
    session: Session,
    user: User,
    key: str,
    frequency: Frequency | str,
    reminder_days: list[int] | None = None,
    *,
    now: dt.datetime | None = None,
) -> AlertSubscription:
    """Subscribe (or resubscribe and update) the user to a target. The caller commits."""
    frequency = _frequency(frequency)
    kind, search_id, profile_id = _resolve(session, user, key)
    subscription = session.scalar(
        select(AlertSubscription).where(
            AlertSubscription.user_id == user.id,
            AlertSubscription.kind == kind,
            AlertSubscription.saved_search_id.is_(None)
            if search_id is None
            else AlertSubscription.saved_search_id == search_id,
            AlertSubscription.profile_id.is_(None)
            if profile_id is None
            else AlertSubscription.profile_id == profile_id,
        )
    )
    if subscription is None:
        subscription = AlertSubscription(
            user_id=user.id,
            kind=kind,
            saved_search_id=search_id,
            profile_id=profile_id,
            created_at=now or utcnow(),
        )
        session.add(subscription)
    elif not subscription.active:
        _reactivate(subscription, now or utcnow())
    subscription.frequency = frequency
    subscription.reminder_days = (
        list(reminder_days) if reminder_days is not None else list(DEFAULT_REMINDER_DAYS)
    )
    session.flush()
    return subscription


def _frequency(value: Frequency | str) -> Frequency:
    try:
        return Frequency(value)
    except ValueError as exc:
        raise SubscriptionError("Frequency must be daily or weekly.") from exc


def owned(session: Session, user: User, subscription_id: int) -> AlertSubscription:
    subscription = session.get(AlertSubscription, subscription_id)
    if subscription is None or subscription.user_id != user.id:
        raise SubscriptionError("That alert does not exist.")
    return subscription


def change(
    session: Session, user: User, subscription_id: int, frequency: Frequency | str, reminder_days: list[int]
) -> AlertSubscription:
    subscription = owned(session, user, subscription_id)
    subscription.frequency = _frequency(frequency)
    subscription.reminder_days = list(reminder_days)
    session.flush()
    return subscription


def unsubscribe(session: Session, user: User, subscription_id: int, now: dt.datetime | None = None) -> None:
    subscription = owned(session, user, subscription_id)
    subscription.active = False
    subscription.unsubscribed_at = now or utcnow()
    session.flush()


def _reactivate(subscription: AlertSubscription, now: dt.datetime) -> None:
    """Back on, counting news from now: a returning user is not sent everything missed meanwhile."""
    subscription.active = True
    subscription.unsubscribed_at = None
    subscription.last_digest_at = now


def resubscribe(session: Session, user: User, subscription_id: int, now: dt.datetime | None = None) -> None:
    subscription = owned(session, user, subscription_id)
    if not subscription.active:
        _reactivate(subscription, now or utcnow())
    session.flush()


def unsubscribe_all(session: Session, user_id: int, now: dt.datetime | None = None) -> int:
    """Turn off every alert email of a user (the one-click unsubscribe). Returns how many were on."""
    result = session.execute(
        update(AlertSubscription)
        .where(
            AlertSubscription.user_id == user_id,
            or_(AlertSubscription.active.is_(True), AlertSubscription.unsubscribed_at.is_(None)),
        )
        .values(active=False, unsubscribed_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


def has_active(session: Session, user_id: int) -> bool:
    return (
        session.scalar(
            select(AlertSubscription.id)
            .where(AlertSubscription.user_id == user_id, AlertSubscription.active.is_(True))
            .limit(1)
        )
        is not None
    )


def calendar_version(session: Session, user_id: int) -> int:
    """The version signed into the user's calendar token (created at 1 on first use)."""
    settings = session.get(AlertSettings, user_id)
    if settings is None:
        settings = AlertSettings(user_id=user_id, calendar_token_version=1)
        session.add(settings)
        session.flush()
    return settings.calendar_token_version


def regenerate_calendar(session: Session, user_id: int) -> int:
    """Revoke the current calendar URL: the next version makes every older token invalid."""
    calendar_version(session, user_id)
    settings = session.get(AlertSettings, user_id)
    assert settings is not None
    settings.calendar_token_version += 1
    session.flush()
    return settings.calendar_token_version


def reminder_days_for(session: Session, user_id: int) -> list[int]:
    """Lead times for the user's calendar alarms: those of their tracked subscription, else the defaults."""
    subscription = session.scalar(
        select(AlertSubscription).where(
            AlertSubscription.user_id == user_id,
            AlertSubscription.kind == SubscriptionKind.TRACKED,
            AlertSubscription.active.is_(True),
        )
    )
    if subscription is not None and subscription.reminder_days is not None:
        return list(subscription.reminder_days)
    return list(DEFAULT_REMINDER_DAYS)

"""Program-profile subscriptions: new opportunities the matcher ranks for the profile, with its reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import time_machine
from flask import Flask
from sqlalchemy.orm import Session

from app import jobs
from app.models import AlertSubscription, Frequency, MatchDismissal, ProgramProfile, SubscriptionKind
from app.services import digests
from tests.alerts.conftest import NOW, add_opportunity

OUTREACH = (
    "Street outreach workers and violence interrupters mediate conflicts, mentor young people at risk of"
    " gun violence and connect them to jobs and trauma care."
)


def _profile(session: Session, user: Any) -> ProgramProfile:
    profile = ProgramProfile(
        organization_id=user.organization_id,
        name="Peacekeepers street outreach",
        org_type="nonprofit",
        city="Oakland",
        state="CA",
        program_description=OUTREACH,
        focus_areas=["street outreach", "violence interruption"],
        populations=["young adults"],
    )
    session.add(profile)
    session.flush()
    session.add(
        AlertSubscription(
            user_id=user.id,
            kind=SubscriptionKind.PROGRAM_PROFILE,
            profile_id=profile.id,
            frequency=Frequency.DAILY,
            created_at=NOW - dt.timedelta(days=5),
            last_digest_at=NOW - dt.timedelta(days=1),
        )
    )
    session.commit()
    return profile


def _build(session: Session, app: Flask) -> digests.DigestRun:
    with time_machine.travel(NOW, tick=False):
        builder = digests.builder_from_config(session, app.config, matcher=jobs.profile_matcher())
        return digests.build_digests(session, builder, Frequency.DAILY, keep=True)


def test_profile_digest_lists_new_matches_with_the_matchers_reason(
    app: Flask, session: Session, make_user: Any
) -> None:
    user = make_user()
    add_opportunity(
        session,
        at=NOW - dt.timedelta(days=9),
        id="old",
        title="Violence interruption (older)",
        description=OUTREACH,
    )
    add_opportunity(
        session,
        at=NOW - dt.timedelta(hours=5),
        id="new",
        title="Street outreach and violence interruption",
        description=OUTREACH,
    )
    add_opportunity(
        session,
        at=NOW - dt.timedelta(hours=5),
        id="off-topic",
        title="Rural broadband deployment",
        description="Fiber networks for farms and small towns.",
    )
    profile = _profile(session, user)
    assert jobs.profile_matcher() is not None

    run = _build(session, app)
    [digest] = run.digests
    [section] = digest.sections
    assert section.label == "Program profile “Peacekeepers street outreach”"
    assert [i.title for i in section.new] == ["Street outreach and violence interruption"]
    reason = section.new[0].reason
    assert reason and "\n" not in reason
    assert f"Why: {reason}" in digest.body_text
    assert section.link == f"http://testserver.local/profiles/{profile.id}/matches"
    assert run.matcher_calls == 1


def test_not_a_fit_matches_stay_out_of_the_digest(app: Flask, session: Session, make_user: Any) -> None:
    user = make_user()
    dismissed = add_opportunity(
        session,
        at=NOW - dt.timedelta(hours=5),
        id="nope",
        title="Street outreach we ruled out",
        description=OUTREACH,
    )
    profile = _profile(session, user)
    session.add(
        MatchDismissal(profile_id=profile.id, opportunity_id=dismissed.id, reason="Needs a state agency")
    )
    session.commit()
    assert _build(session, app).digests == []


def test_profiles_of_many_users_are_ranked_once_per_run(app: Flask, session: Session, make_user: Any) -> None:
    first = make_user()
    add_opportunity(
        session,
        at=NOW - dt.timedelta(hours=5),
        id="new",
        title="Street outreach grants",
        description=OUTREACH,
    )
    profile = _profile(session, first)
    from app.services.accounts import create_user

    colleague = create_user(
        session, "colleague@example.org", "correct horse battery", organization=first.organization
    )
    session.add(
        AlertSubscription(
            user_id=colleague.id,
            kind=SubscriptionKind.PROGRAM_PROFILE,
            profile_id=profile.id,
            frequency=Frequency.DAILY,
            created_at=NOW - dt.timedelta(days=5),
            last_digest_at=NOW - dt.timedelta(days=1),
        )
    )
    session.commit()
    run = _build(session, app)
    assert len(run.digests) == 2 and run.matcher_calls == 1


def test_a_run_embeds_changed_profiles_once_and_keeps_their_vectors(
    app: Flask, session: Session, make_user: Any, monkeypatch: Any
) -> None:
    """Profiles are embedded in one batch before ranking, and only when their text changed since the
    vector stored on them: a new scheduler process reads the stored vector instead of the model."""
    from matching import embeddings
    from matching.profile import ProfileInput
    from matching.text import text_hash

    user = make_user()
    add_opportunity(
        session, at=NOW - dt.timedelta(hours=5), id="new", title="Violence interruption", description=OUTREACH
    )
    tomorrow = NOW + dt.timedelta(days=1)
    add_opportunity(
        session,
        at=tomorrow - dt.timedelta(hours=5),
        id="newer",
        title="Outreach workers",
        description=OUTREACH,
    )
    profile = _profile(session, user)
    text = ProfileInput.from_model(profile).query_text()
    embeddings._query_cache.pop(text, None)
    batches: list[list[str]] = []
    real = embeddings.encode

    def spy(texts: list[str], *args: Any, **kwargs: Any) -> Any:
        batches.append(list(texts))
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(embeddings, "encode", spy)
    run = _build(session, app)
    assert batches == [embeddings.passages(text) or [text]] and text in embeddings._query_cache
    assert run.matcher_calls == 1 and run.built == 1
    session.expire_all()
    stored = session.get(ProgramProfile, profile.id)
    assert stored is not None and stored.query_vector_key == text_hash(text, embeddings.MODEL_NAME)
    assert stored.query_vector is not None
    assert embeddings.from_bytes(stored.query_vector).tolist() == embeddings._query_cache[text].tolist()

    # A fresh process (empty query cache), the next day: the stored vector is used, nothing embedded.
    embeddings._query_cache.pop(text, None)
    with time_machine.travel(tomorrow, tick=False):
        builder = digests.builder_from_config(session, app.config, matcher=jobs.profile_matcher())
        again = digests.build_digests(session, builder, Frequency.DAILY, keep=True)
    assert batches == [embeddings.passages(text) or [text]]
    assert again.built == 1 and again.matcher_calls == 1 and text in embeddings._query_cache

    # The profile is edited: its next run embeds it again (and only it).
    stored.program_description = OUTREACH + " We also run a hospital-based program."
    session.commit()
    edited = ProfileInput.from_model(stored).query_text()
    embeddings._query_cache.pop(edited, None)
    reused, embedded = embeddings.refresh_profiles(session)
    session.commit()
    assert (reused, embedded) == (0, 1) and batches[-1] == (embeddings.passages(edited) or [edited])
    assert embeddings.refresh_profiles(session) == (1, 0) and len(batches) == 2

"""Hostile text for stored-XSS tests and the check that a rendered page left it inert."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

from bs4 import BeautifulSoup
from sqlalchemy.orm import Session

from app.services import curation
from app.services.opportunities import upsert_many
from app.services.transfer import import_lines
from tests.factories import record

#: Markup that would run script if it reached a page unescaped: element, attribute and URL contexts.
HOSTILE = (
    '<script>window.__xss=1;alert(1)</script>"\'><img src=x onerror="window.__xss=2;alert(2)">'
    "<svg onload=alert(3)><iframe src=javascript:alert(4)></iframe>{{7*7}}"
)
#: Element names and attributes only an injection could have put on our pages.
INJECTED = ("img", "svg", "iframe", "object", "embed")
ESCAPED = "&lt;script&gt;window.__xss=1"


def hostile_opportunities(session: Session, admin: Any, today: dt.date | None = None) -> dict[str, int]:
    """A crawled and an imported opportunity with every text field hostile, curated with hostile notes
    and tags. Both are CVI-eligible and open, so digests, feeds and the widget show them."""
    today = today or dt.date.today()
    close = (today + dt.timedelta(days=14)).isoformat()
    fields = {
        "title": f"Outreach {HOSTILE}\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:injected",
        "agency_name": HOSTILE,
        "eligible_applicants": HOSTILE,
        "description": HOSTILE,
        "description_html": f'<p>Outreach</p>{HOSTILE}<a href="javascript:alert(5)">x</a>',
        "url": "javascript:alert(6)//www.grants.gov/",
        "agency_url": "data:text/html,<script>alert(7)</script>",
        "contact": HOSTILE,
        "close_date": close,
        "post_date": (today - dt.timedelta(days=2)).isoformat(),
    }
    upsert_many(session, [record(id="hostile-crawled", **fields)])
    line = json.dumps({"id": "hostile-imported", "agency": "DOJ", **fields, "number": "XSS-1"})
    report = import_lines(session, io.StringIO(line + "\n"), default_source="import")
    assert report.skipped == 0, report.errors
    session.commit()
    from app.models import Opportunity

    ids = {
        o.source_id: o.id for o in session.query(Opportunity).filter(Opportunity.source_id.like("hostile-%"))
    }
    for opportunity_id in ids.values():
        opportunity = session.get(Opportunity, opportunity_id)
        assert opportunity is not None
        curation.set_cvi(session, opportunity, admin, True, HOSTILE)
        curation.set_tags(
            session,
            opportunity,
            admin,
            curation.parse_tags("outreach, <img src=x onerror=alert(8)>"),
            HOSTILE,
        )
        curation.correct_field(session, opportunity, admin, "close_date_note", HOSTILE, HOSTILE)
    session.commit()
    return ids


def problems(html: str, *, our_scripts: tuple[str, ...] = ()) -> list[str]:
    """What in ``html`` could run script: injected elements, handlers, script URLs, foreign scripts."""
    found = []
    soup = BeautifulSoup(html, "lxml")
    for tag in soup.find_all(True):
        if tag.name in INJECTED:
            found.append(f"<{tag.name}> element")
        if tag.name == "script" and (tag.get("src") not in our_scripts or (tag.string or "").strip()):
            found.append(f"script {tag.get('src')!r}")
        for name, value in tag.attrs.items():
            text = " ".join(value) if isinstance(value, list) else str(value)
            if name.lower().startswith("on"):
                found.append(f"{name}= on <{tag.name}>")
            if name.lower() in ("href", "src", "action", "formaction", "data", "srcdoc"):
                scheme = "".join(text.split()).lower()
                if scheme.startswith(("javascript:", "data:", "vbscript:")):
                    found.append(f"{name}={text[:40]!r} on <{tag.name}>")
    return found

"""``/search``: keyword box, filters with facet counts, sorts, pages and CSV export.

The query and filters live in the URL (a GET form), so a search can be bookmarked and shared.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from pydantic import ValidationError
from werkzeug.datastructures import MultiDict

from app import labels
from app.db import db_session
from app.forms import SavedSearchForm
from app.search_index import keyword_index
from app.services.search import (
    CLOSING_WINDOWS,
    POSTED_WINDOWS,
    SearchParams,
    SearchResult,
    agency_names,
    search,
)

bp = Blueprint("search", __name__)

LIST_FIELDS = ("department", "sub_agency", "status", "eligibility", "instrument", "category")
SCALAR_FIELDS = tuple(name for name in SearchParams.model_fields if name not in LIST_FIELDS)
SORTS = {
    "relevance": "Best match",
    "close_date": "Close date, soonest first",
    "post_date": "Posted date, newest first",
    "award_ceiling": "Largest award first",
}
CSV_LIMIT = 10_000


def parse_params(args: MultiDict[str, str], *, per_page: int) -> SearchParams:
    """Search parameters from a query string; 400 with each field's message when one is wrong."""
    data: dict[str, Any] = {"per_page": per_page}
    for name in LIST_FIELDS:
        values = [v for v in args.getlist(name) if v.strip()]
        if values:
            data[name] = values
    for name in SCALAR_FIELDS:
        values = args.getlist(name)
        # The last value wins: the CVI checkbox follows a hidden "false" so an unticked box says so.
        if values and values[-1].strip() != "":
            data[name] = values[-1]
    try:
        return SearchParams.model_validate(data)
    except ValidationError as exc:
        messages = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"] if not isinstance(part, int)) or "search"
            messages.append(f"{field}: {error['msg']}")
        abort(400, description="This search has a problem. " + "; ".join(messages))


def query_args(params: SearchParams, **changes: Any) -> dict[str, Any]:
    """The URL arguments of a search (only non-default values), with ``changes`` applied."""
    values = params.model_dump(mode="json")
    values.update(changes)
    args: dict[str, Any] = {}
    defaults = SearchParams().model_dump(mode="json")
    for name, value in values.items():
        if name == "per_page":
            continue
        if value in (None, "", []) or (value == defaults.get(name) and name != "cvi_only"):
            continue
        if name == "cvi_only":
            if value is False:
                args[name] = "false"
            continue
        if name == "page" and value == 1:
            continue
        args[name] = value
    return args


def _run(params: SearchParams, *, with_facets: bool = True) -> SearchResult:
    return search(db_session(), params, keyword=keyword_index(), with_facets=with_facets)


@bp.get("/search")
def index() -> str:
    params = parse_params(request.args, per_page=current_app.config["PAGE_SIZE"])
    result = _run(params)
    sub_agencies = [f.value for f in result.facets.get("sub_agency", [])]
    save_form = SavedSearchForm(query=request.query_string.decode("utf-8", "replace"))
    return render_template(
        "search/index.html",
        params=params,
        result=result,
        sorts=SORTS,
        closing_windows=CLOSING_WINDOWS,
        posted_windows=POSTED_WINDOWS,
        agency_names=agency_names(db_session(), sub_agencies),
        query_args=query_args,
        save_form=save_form,
        csv_url=url_for("search.export_csv", **query_args(params)),
    )


CSV_COLUMNS = (
    "id", "opportunity_number", "title", "department", "agency", "status", "post_date", "close_date",
    "award_floor", "award_ceiling", "total_funding", "expected_awards", "eligible_applicants",
    "assistance_listings", "funding_instruments", "categories", "cvi_eligible", "url", "page",
)  # fmt: skip


@bp.get("/search.csv")
def export_csv() -> Response:
    """The whole result list (up to 10,000 rows) as CSV, in the order the page shows it."""
    params = parse_params(request.args, per_page=100)
    base_url = current_app.config["BASE_URL"]

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        page = 1
        sent = 0
        while sent < CSV_LIMIT:
            result = _run(params.model_copy(update={"page": page}), with_facets=False)
            for opp in result.items:
                writer.writerow(
                    [
                        opp.id, opp.number or "", opp.title, labels.label("department", opp.department),
                        opp.agency_name or opp.sub_agency or "", labels.label("status", opp.status),
                        opp.post_date or "", opp.close_date or "", opp.award_floor or "",
                        opp.award_ceiling or "", opp.total_funding or "", opp.expected_awards or "",
                        "; ".join(labels.labels("eligibility", opp.eligibility_codes or [])),
                        "; ".join(opp.aln or []),
                        "; ".join(labels.labels("instrument", opp.funding_instruments or [])),
                        "; ".join(labels.labels("category", opp.categories or [])),
                        "yes" if opp.cvi_eligible else "no", opp.url or "",
                        f"{base_url}/opportunities/{opp.id}",
                    ]
                )  # fmt: skip
                sent += 1
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if page >= result.pages or not result.items:
                break
            page += 1

    response = Response(stream_with_context(rows()), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="cvi-funding-search.csv"'
    return response

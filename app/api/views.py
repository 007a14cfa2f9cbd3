"""The partner JSON API under ``/api/v1``: thin routes over the search, catalogue and deadline services."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from pydantic import BaseModel
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from app.api import gate, openapi, pagination, widget
from app.api.operations import (
    REGISTRY,
    Auth,
    Operation,
    json_response,
    parse_json_body,
    parse_query,
    register,
)
from app.api.problems import ApiProblem, from_http_exception
from app.api.schemas import (
    AgencyList,
    AgencyOut,
    ApiIndex,
    CviProgramList,
    CviProgramOut,
    DeadlineList,
    DeadlineOut,
    DeadlineQuery,
    DepartmentQuery,
    FieldError,
    MatchList,
    MatchOut,
    MatchQuery,
    NoQuery,
    OpportunityDetail,
    OpportunityPage,
    OpportunityQuery,
    OpportunitySummary,
)
from app.db import db_session
from app.extensions import csrf
from app.search_index import keyword_index
from app.services import catalogue_version, deadlines, opportunity_detail, reference
from app.services.search import KeywordSearcher, search
from matching.profile import MatchingError, ProfileInput
from matching.ranker import RankFilters, rank

log = logging.getLogger(__name__)

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
# Keys, not cookies, authenticate the API: there is no session for a forged form to ride on.
csrf.exempt(bp)

_FLASK_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def operation(
    path: str,
    *,
    method: str = "GET",
    summary: str,
    description: str = "",
    tag: str,
    query: type[BaseModel] | None = NoQuery,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    media_type: str = "application/json",
    auth: Auth = "optional",
    cacheable: bool = False,
    public_cors: bool = False,
    path_params: dict[str, dict[str, Any]] | None = None,
    errors: tuple[int, ...] = (400, 429),
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Declare a route and its OpenAPI operation together; the view gets validated ``query``/``body``."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Response]:
        op = register(
            Operation(
                endpoint=f"{bp.name}.{view.__name__}",
                method=method.lower(),
                path=_FLASK_PARAM.sub(r"{\2}", path),
                summary=summary,
                description=description,
                tag=tag,
                query=query,
                body=body,
                response=response,
                media_type=media_type,
                auth=auth,
                cacheable=cacheable,
                public_cors=public_cors,
                path_params=path_params or {},
                errors=errors,
            )
        )

        @functools.wraps(view)
        def wrapper(**path_kwargs: Any) -> Response:
            kwargs: dict[str, Any] = dict(path_kwargs)
            if op.query is not None:
                kwargs["query"] = parse_query(op.query)
            if op.body is not None:
                kwargs["body"] = parse_json_body(op.body)
            if op.response is None:
                result: Response = view(**kwargs)
                return result
            cache_key = None
            if "query" in kwargs:
                cache_key = f"{sorted(path_kwargs.items())}:{kwargs['query'].model_dump_json()}"
            return json_response(
                op,
                lambda: view(**kwargs),
                cache_key,
                version=_catalogue_token,
                api_version=openapi.API_VERSION,
            )

        bp.add_url_rule(path, view_func=wrapper, methods=[method])
        return wrapper

    return decorate


def _catalogue_token() -> str:
    """The catalogue version behind ETags, re-read at most every API_VERSION_CHECK_SECONDS."""
    memo = current_app.extensions.setdefault("catalogue_version_memo", catalogue_version.VersionMemo())
    return memo.token(db_session(), float(current_app.config["API_VERSION_CHECK_SECONDS"]))  # type: ignore[no-any-return]


def _base_url() -> str:
    return str(current_app.config["BASE_URL"])


def _keyword_index() -> KeywordSearcher | None:
    """The Whoosh index when one can be searched, else None (search falls back to SQL matching)."""
    return keyword_index()


# -- the API ---------------------------------------------------------------------------------------


@operation(
    "/",
    summary="Where things are",
    description="Links to the OpenAPI document, the docs page and the widget.",
    tag="meta",
    response=ApiIndex,
)
def index(query: NoQuery) -> ApiIndex:
    return ApiIndex(
        name="CVI Funding Finder API",
        version=openapi.API_VERSION,
        openapi="/api/v1/openapi.json",
        docs="/api/v1/docs",
        widget="/api/v1/widget.js",
    )


@operation(
    "/opportunities",
    summary="Search opportunities",
    description=(
        "The site's search: keywords (or an opportunity number or ALN), filters and sorts. "
        "CVI-eligible opportunities only unless `cvi_only=false`. List parameters may repeat "
        "(`department=DOJ&department=HHS`) or use commas (`department=DOJ,HHS`). Page with `page` "
        "or with the `next_cursor` of the previous page."
    ),
    tag="opportunities",
    query=OpportunityQuery,
    response=OpportunityPage,
    cacheable=True,
)
def list_opportunities(query: OpportunityQuery) -> OpportunityPage:
    page = query.page
    if query.cursor:
        if "page" in request.args:
            raise ApiProblem(
                400,
                "Give page or cursor, not both.",
                errors=[FieldError(field="page", message="cannot be combined with cursor")],
            )
        page = pagination.decode(query.cursor, query)
    params = query.model_copy(update={"page": page})
    result = search(db_session(), params, keyword=_keyword_index(), with_facets=False)
    base = _base_url()
    next_cursor = pagination.encode(page + 1, query) if page < min(result.pages, 10_000) else None
    return OpportunityPage(
        items=[OpportunitySummary.from_model(o, base, result.matched_terms.get(o.id)) for o in result.items],
        total=result.total,
        page=page,
        per_page=params.per_page,
        pages=result.pages,
        next_cursor=next_cursor,
        exact_match_id=result.exact.id if result.exact is not None else None,
    )


@operation(
    "/opportunities/<anyint:opportunity_id>",  # the service bounds the id and names the field
    summary="One opportunity with its versions",
    description=(
        "Everything stored about an opportunity and what changed when. Merged ones lead to the survivor."
    ),
    tag="opportunities",
    response=OpportunityDetail,
    cacheable=True,
    path_params={"opportunity_id": {"type": "integer", "minimum": 1, "maximum": opportunity_detail.MAX_ID}},
    errors=(400, 404, 429),
)
def get_opportunity(opportunity_id: int, query: NoQuery) -> OpportunityDetail:
    opportunity = opportunity_detail.get_public(db_session(), opportunity_id)
    if opportunity is None:
        raise ApiProblem(
            404,
            f"There is no opportunity {opportunity_id}.",
            errors=[FieldError(field="opportunity_id", message="is not the id of a visible opportunity")],
        )
    return OpportunityDetail.from_detail(opportunity, _base_url())


@operation(
    "/match",
    method="POST",
    summary="Rank opportunities for a program profile",
    description=(
        "Send a program profile (the DESIGN.md contract: org_type, program_description, focus_areas, "
        "populations, funding_need, budget_range …) and get open or forecasted opportunities with at "
        "least a week left, best first, each with why it matched, the applicant-eligibility verdict "
        "for the profile's org_type and the CVI programs it belongs to. Needs an API key."
    ),
    tag="matching",
    query=MatchQuery,
    body=ProfileInput,
    response=MatchList,
    auth="required",
    errors=(400, 401, 413, 415, 429),
)
def match(query: MatchQuery, body: ProfileInput) -> MatchList:
    filters = RankFilters(departments=query.department or None, cvi_only=query.cvi_only)
    try:
        matches = rank(
            db_session(), body, filters=filters, limit=query.limit, offset=query.offset, method=query.method
        )
    except MatchingError as exc:
        raise ApiProblem(400, str(exc), errors=[FieldError(field="body", message=str(exc))]) from None
    base = _base_url()
    return MatchList(
        profile_id=body.id,
        items=[MatchOut.from_match(m, base) for m in matches],
        limit=query.limit,
        offset=query.offset,
    )


@operation(
    "/cvi-programs",
    summary="The curated CVI program catalogue",
    description="Federal programs that can fund community violence intervention, with their ALNs.",
    tag="catalogue",
    query=DepartmentQuery,
    response=CviProgramList,
    cacheable=True,
)
def list_cvi_programs(query: DepartmentQuery) -> CviProgramList:
    programs = reference.cvi_programs(db_session(), query.department)
    return CviProgramList(items=[CviProgramOut.from_model(p) for p in programs], total=len(programs))


@operation(
    "/agencies",
    summary="Agencies by department",
    description="Every agency the store knows, with counts of its visible and CVI-eligible opportunities.",
    tag="catalogue",
    query=DepartmentQuery,
    response=AgencyList,
    cacheable=True,
)
def list_agencies(query: DepartmentQuery) -> AgencyList:
    rows = reference.agencies(db_session(), query.department)
    items = [AgencyOut.from_model(r.agency, r.opportunities, r.cvi_opportunities) for r in rows]
    return AgencyList(items=items, total=len(items))


@operation(
    "/deadlines",
    summary="Upcoming CVI deadlines (the widget's data)",
    description=(
        "Open or forecasted CVI-eligible opportunities closing from today, soonest first. "
        "`state`: opportunities whose eligibility text or source fields name that state, or name "
        "no state at all (national). Any origin may read it (CORS `*`), no key needed."
    ),
    tag="widget",
    query=DeadlineQuery,
    response=DeadlineList,
    cacheable=True,
    public_cors=True,
)
def list_deadlines(query: DeadlineQuery) -> DeadlineList:
    today = dt.date.today()
    state = query.state.upper() if query.state else None
    found = deadlines.upcoming(
        db_session(), departments=query.department, state=state, limit=query.limit, today=today
    )
    return DeadlineList(
        items=[DeadlineOut.from_model(o, _base_url(), today) for o in found],
        state=state,
        departments=query.department,
    )


@operation(
    "/openapi.json",
    summary="This OpenAPI document",
    tag="meta",
    auth="none",
    public_cors=True,
    errors=(400,),
)
def openapi_document(query: NoQuery) -> Response:
    return widget.cached_text(openapi.document_json(), "application/json", max_age=300)


@operation(
    "/docs",
    summary="Readable API documentation (HTML)",
    tag="meta",
    media_type="text/html",
    auth="none",
    errors=(400,),
)
def docs(query: NoQuery) -> Response:
    html = render_template("api/docs.html", spec=openapi.document(), view=openapi.docs_view())
    return Response(html, mimetype="text/html")


@operation(
    "/widget.js",
    summary="The embeddable deadlines widget (JavaScript)",
    tag="widget",
    media_type="application/javascript",
    auth="none",
    public_cors=True,
    errors=(400,),
)
def widget_script(query: NoQuery) -> Response:
    return widget.cached_text(widget.script(), "application/javascript", max_age=3600)


@operation(
    "/widget-demo",
    summary="A page showing the widget and the snippet to paste (HTML)",
    tag="widget",
    media_type="text/html",
    auth="none",
    errors=(400,),
)
def widget_demo(query: NoQuery) -> Response:
    return Response(render_template("api/widget_demo.html"), mimetype="text/html")


# -- every other path and method under /api/v1 -----------------------------------------------------


@bp.route("/<path:rest>", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def not_found(rest: str) -> Response:
    """Unknown paths (404) and known paths with the wrong method (405), in the problem shape."""
    adapter = _api_map().bind("")
    try:
        adapter.match(request.path, method=request.method)
    except MethodNotAllowed as exc:
        raise from_http_exception(exc) from None
    except NotFound:
        raise _no_such_route() from None
    raise _no_such_route()


def _no_such_route() -> ApiProblem:
    return ApiProblem(
        404,
        f"There is no {request.path[:200]} in this API; see /api/v1/docs.",
        errors=[FieldError(field="path", message="is not an API route")],
    )


@functools.cache
def _api_map() -> Map:
    """The API's own routes without the catch-all, to tell 404 from 405."""
    rules = [
        Rule(rule.rule, endpoint=rule.endpoint, methods=rule.methods)
        for rule in current_app.url_map.iter_rules()
        if rule.endpoint.startswith(f"{bp.name}.") and rule.endpoint != f"{bp.name}.not_found"
    ]
    return Map(rules, converters=dict(current_app.url_map.converters))


@bp.before_request
def _admit() -> Response | None:
    return gate.admit()


@bp.after_request
def _decorate(response: Response) -> Response:
    return gate.decorate(response)


@bp.errorhandler(ApiProblem)
def _problem(exc: ApiProblem) -> Response:
    return exc.to_response()


@bp.errorhandler(HTTPException)
def _http_problem(exc: HTTPException) -> Response:
    return from_http_exception(exc).to_response()


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    log.exception("api request failed", extra={"path": request.path, "method": request.method})
    db_session().rollback()
    return ApiProblem(500, "Something went wrong on our side; it has been logged.").to_response()


__all__ = ["REGISTRY", "bp"]

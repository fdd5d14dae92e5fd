"""The review page as a Starlette app: server-rendered pages and one POST form per decision.

Every decision goes through `db/review.py` (which writes the review log); every read through `db/queries.py`
or `review/queries.py`. The app adds only what a web page must: escaping (Jinja autoescape), CSRF tokens,
optional HTTP basic auth, security headers. It never fetches a listing's URL or images: photos come from
the store the crawl keeps (`review/photos.py`, by hash), and only with `remote_photos` does the reviewer's
browser load a listing's photos straight from the marketplace when nothing was kept.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from db import review
from db.engine import READ_OPTION, make_engine, session_factory, session_scope
from db.migrate import upgrade_engine
from db.models import APPEARANCE_KINDS, FLAG_STATUSES, Flag
from pipeline.analyse import analyse_listing
from pipeline.normalise import normalise_with_map, original_span
from pipeline.results import ALL_FLAG_CODES, Field
from pipeline.rules import ModelRule, Rules
from pipeline.serials import extract_serial_candidates
from review import model_queries, photos, queries
from review.auth import AuthThrottle, clean_user
from review.present import Chart, DensityChart, Span, density_chart, model_chart, model_estimates, safe_url, segments

HERE = Path(__file__).resolve().parent
logger = logging.getLogger(__name__)
CSRF_COOKIE = "kw_csrf"
CSRF_FIELD = "csrf"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Images from this origin only: kept photos are served by hash from the store (review/photos.py).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# With `remote_photos`, a listing with no kept photo shows the marketplace's images (http(s) only).
CSP_REMOTE_PHOTOS = CSP.replace("img-src 'self';", "img-src 'self' https: http:;")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the marketplace hosting a photo learns nothing about this page
    "Cross-Origin-Opener-Policy": "same-origin",
}
KIND_LABELS = {"new": "first sighting", "duplicate_sale": "duplicate sale", "repost": "repost"}
# What marking an appearance as each kind means to the reviewer. "Different unit" is not a kind but its own
# decision (`db.review.mark_different_unit`): the sighting becomes the first of another unit with that serial.
MARK_LABELS = {"duplicate_sale": "duplicate sale", "repost": "repost", "new": "first sighting"}
DONE_MESSAGES = {
    "confirm": "Flag {flag} confirmed.",
    "correct": "Flag {flag} corrected.",
    "model": "Flag {flag}: model changed.",
    "dismiss": "Flag {flag} dismissed.",
    "note": "Note added to flag {flag}.",
    "kind": "Appearance {appearance} re-marked.",
    "unit": "Appearance {appearance} is now the first sighting of a different unit.",
    "reopen": "Flag {flag} reopened.",
    "undo": "Decision on flag {flag} undone.",
}
UNDOABLE = ("confirm", "correct", "model", "dismiss")  # decisions the toast (and `u`) can take back
ERROR_TITLES = {400: "Bad request", 403: "Refused", 404: "Not found", 405: "Not allowed", 409: "Not done"}


@dataclass
class ReviewConfig:
    """How one review server runs: which database, which rules, who decides, and who may."""

    db_url: str
    rules: Rules
    reviewer: str = "reviewer"
    token: str | None = None  # when set, every request needs HTTP basic auth with this password
    allowed_hosts: tuple[str, ...] | None = None  # Host headers accepted (DNS-rebinding guard on loopback)
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    throttle: AuthThrottle = field(default_factory=AuthThrottle)  # failed sign-ins per client
    public_feeds: tuple[str, ...] = ()  # Atom feeds a reader gets without the token (notify.yaml: public_feeds)
    public_base_url: str | None = None  # feeds' links: where the page is reachable (else the request's host)
    photo_root: Path | None = None  # the kept photos (default: the data directory's photos/)
    remote_photos: bool = False  # no kept photo: load the marketplace's images in the browser (widens the CSP)


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the server on this machine."""
    host = host.strip("[]")
    return host in LOOPBACK_HOSTS or host.startswith("127.")


# --- security ------------------------------------------------------------------------------------------


def csrf_token(config: ReviewConfig, seed: str) -> str:
    """The token forms must echo: bound to the browser's cookie and to this server's secret."""
    return hmac.new(config.secret, seed.encode(), hashlib.sha256).hexdigest()


def _basic_user(request: Request, token: str) -> str | None:
    """The user name (cleaned for the log) when the request's basic auth carries the token, else None."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(password.encode(), token.encode()):
        return None
    return clean_user(user)


def is_public_feed(path: str, public: tuple[str, ...]) -> bool:
    """Whether `path` is an Atom feed the config lets a feed reader fetch without the token (never the queue)."""
    if path == "/feeds/sightings.atom":
        return "sightings" in public
    return path.startswith("/feeds/models/") and path.endswith(".atom") and "models" in public


class GuardMiddleware(BaseHTTPMiddleware):
    """Host check, auth, the CSRF cookie and security headers on every response."""

    def __init__(self, app: Any, config: ReviewConfig) -> None:
        super().__init__(app)
        self.config = config

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        config = self.config
        response: Response
        host = request.headers.get("host", "").rsplit(":", 1)[0].strip("[]") if request.headers.get("host") else ""
        client = request.client.host if request.client else "unknown"
        public = request.method == "GET" and is_public_feed(request.url.path, config.public_feeds)
        locked = config.throttle.locked_for(client) if config.token and not public else 0.0
        user = _basic_user(request, config.token) if config.token and not locked and not public else config.reviewer
        if config.allowed_hosts is not None and host not in config.allowed_hosts:
            response = PlainTextResponse("unknown host", status_code=400)
        elif locked:
            response = PlainTextResponse(
                f"too many failed sign-ins from {client}: try again in {int(locked) + 1} s",
                status_code=429,
                headers={"Retry-After": str(int(locked) + 1)},
            )
        elif user is None:
            if "authorization" in request.headers:
                await asyncio.sleep(config.throttle.failed(client))  # each further guess waits longer
            response = PlainTextResponse(
                "korgwatch review: sign in", status_code=401, headers={"WWW-Authenticate": 'Basic realm="korgwatch"'}
            )
        else:
            if config.token:
                config.throttle.succeeded(client)
            request.state.user = user
            seed = request.cookies.get(CSRF_COOKIE, "")
            fresh = not (len(seed) == 64 and all(c in "0123456789abcdef" for c in seed))
            if fresh:
                seed = secrets.token_hex(32)
            request.state.csrf_seed = seed
            request.state.csrf_fresh = fresh
            try:
                response = await call_next(request)
            except Exception:  # an error page carries the same headers as every other page
                logger.exception("review page: %s %s failed", request.method, request.url.path)
                response = PlainTextResponse("internal error", status_code=500)
            if fresh:
                response.set_cookie(CSRF_COOKIE, seed, httponly=True, samesite="strict", path="/")
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if config.remote_photos:
            response.headers["Content-Security-Policy"] = CSP_REMOTE_PHOTOS
        if response.media_type == "text/html" or response.headers.get("content-type", "").startswith("text/html"):
            response.headers["Cache-Control"] = "no-store"
        return response


async def checked_form(request: Request) -> FormData:
    """The POSTed form, after the CSRF check (403 when the token is missing or wrong, or the origin foreign)."""
    config: ReviewConfig = request.app.state.config
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "cross-origin request refused")
    form = await request.form()
    sent = str(form.get(CSRF_FIELD, ""))
    if request.state.csrf_fresh or not sent:
        raise HTTPException(403, "missing CSRF token: reload the page and try again")
    if not hmac.compare_digest(sent, csrf_token(config, request.state.csrf_seed)):
        raise HTTPException(403, "wrong CSRF token: reload the page and try again")
    return form


# --- rendering ------------------------------------------------------------------------------------------


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every scraped string is text, whatever it contains
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_url"] = safe_url
    env.filters["when"] = _when
    env.filters["day"] = lambda d: d.date().isoformat() if d else ""
    env.globals["KIND_LABELS"] = KIND_LABELS
    env.globals["MARK_LABELS"] = MARK_LABELS
    return Jinja2Templates(env=env)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    config: ReviewConfig = request.app.state.config
    base = {
        "csrf": csrf_token(config, request.state.csrf_seed),
        "user": request.state.user,
        "models": list(config.rules.models),
        "done": _done_message(request),
        "undo_flag": _undo_flag(request),
        "path": request.url.path,
    }
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _read(request: Request) -> Session:
    """A session for reading: on SQLite a deferred transaction, so pages never wait behind a writer."""
    return session_factory(request.app.state.read_engine)()


def _local_next(value: str | None, fallback: str) -> str:
    """Where to go after a decision: only a path on this server (no `//evil.example`, no scheme)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return fallback


def _with_params(path: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    if not query:
        return path
    return f"{path}{'&' if '?' in path else '?'}{query}"


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


# --- pages ----------------------------------------------------------------------------------------------


def queue_page(request: Request) -> Response:
    params = request.query_params
    status = params.get("status", "open")
    if status not in FLAG_STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(FLAG_STATUSES)}")
    filters = queries.QueueFilters(
        status=status,
        code=params.get("code", "").strip(),
        model=params.get("model", "").strip(),
        source=params.get("source", "").strip(),
    )
    after = None
    if params.get("after"):
        try:
            after = queries.decode_cursor(params["after"])
        except ValueError:
            raise HTTPException(400, "bad page cursor") from None
    try:
        limit = int(params.get("limit", queries.PAGE_SIZE))
    except ValueError:
        raise HTTPException(400, "limit must be a number") from None
    with _read(request) as session:
        rows, next_cursor = queries.queue_page(session, filters, after, limit)
        counts = queries.code_counts(session, filters.status)
        sources = queries.source_names(session)
    items = []
    for row in rows:
        span = row.title_span
        spans = [Span(span[0], span[1], "recorded", f"{row.model} serial")] if span else []
        items.append({"row": row, "title": segments(row.title, spans)})
    return render(
        request,
        "queue.html",
        {
            "items": items,
            "filters": filters,
            "counts": counts,
            "total": sum(n for _, n in counts),
            "codes": sorted(set(ALL_FLAG_CODES) | {c for c, _ in counts}),
            "sources": sources,
            "statuses": FLAG_STATUSES,
            "next_url": _with_params("/", **filters.as_params(), limit=params.get("limit"), after=next_cursor)
            if next_cursor
            else None,
            "first_url": _with_params("/", **filters.as_params()) if after else None,
            "here": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        },
    )


def _done_message(request: Request) -> str | None:
    done = request.query_params.get("done")
    template = DONE_MESSAGES.get(done or "")
    if template is None:
        return None
    return template.format(
        flag=request.query_params.get("flag", "?"), appearance=request.query_params.get("appearance", "?")
    )


def _undo_flag(request: Request) -> int | None:
    """The flag whose decision the page just reported (after a plain form POST), so the flash can offer undo."""
    flag = request.query_params.get("flag", "")
    return int(flag) if request.query_params.get("done") in UNDOABLE and flag.isdigit() else None


def _candidate_spans(title: str, body: str, rules: Rules, view: queries.ListingView) -> dict[str, list[Span]]:
    """Every candidate serial the analyser sees, with the stored (recorded) spans taking precedence."""
    spans: dict[str, list[Span]] = {"title": [], "body": []}
    for item in view.appearances:
        app = item.appearance
        if app.serial_field in spans and app.serial_start is not None and app.serial_end is not None:
            spans[app.serial_field].append(
                Span(app.serial_start, app.serial_end, "recorded", f"{item.model} serial (recorded)")
            )
    analysis = analyse_listing(title, body, rules)
    for instrument in analysis.instruments:
        for cand in instrument.candidates:
            chosen = instrument.serial_candidate == cand
            label = f"{instrument.model} serial" if chosen else f"candidate {cand.serial}"
            if cand.cue and cand.cue.strip():
                label += f" after “{cand.cue.strip()}”"
            spans[cand.field].append(Span(cand.start, cand.end, "candidate", label))
    # Numbers the analyser set aside (e.g. a body's plate number once the title gave a serial) still show.
    fields: tuple[tuple[Field, str], ...] = (("title", title), ("body", body))
    for name, text in fields:
        taken = {(s.start, s.end) for s in spans[name]}
        norm, origin = normalise_with_map(text)
        for cand in extract_serial_candidates(norm, name):
            start, end = original_span(origin, cand.start, cand.end, len(text))
            if (start, end) not in taken:
                cue = f" after “{cand.cue.strip()}”" if cand.cue and cand.cue.strip() else ""
                spans[name].append(Span(start, end, "candidate", f"candidate {cand.serial}{cue}"))
    return spans


def listing_page(request: Request) -> Response:
    config: ReviewConfig = request.app.state.config
    listing_id = request.path_params["listing_id"]
    with _read(request) as session:
        view = queries.listing_view(session, listing_id, config.rules)
        if view is None:
            raise HTTPException(404, f"no listing {listing_id}")
        listing = view.listing
        spans = _candidate_spans(listing.title, listing.body or "", config.rules, view)
        open_flag_ids = [f.id for f in view.flags if f.status == "open"]
        next_flag = queries.neighbour_flag(session, open_flag_ids[-1]) if open_flag_ids else None
        kept, remote = photos.listing_photos(session, listing)
        panels = photos.photo_panels(session, listing.id, [(a.appearance.id, a.timeline) for a in view.appearances])
        next_listing = None
        if next_flag is not None:
            nf = session.get(Flag, next_flag)
            next_listing = nf.listing_id if nf else None
        flags = [
            {
                "flag": f,
                "message": str(f.details.get("message", "")),
                "suggestions": [str(s) for s in f.details.get("suggestions") or ()],
                "models": [str(m) for m in f.details.get("models") or () if m in config.rules.models],
                "appearance": next((a for a in view.appearances if a.appearance.id == f.appearance_id), None),
                "photo_matches": photos.reused_matches(f.details),
            }
            for f in view.flags
        ]
        return render(
            request,
            "listing.html",
            {
                "view": view,
                "listing": listing,
                "flags": flags,
                "title_segments": segments(listing.title, spans["title"]),
                "body_segments": segments(listing.body or "", spans["body"]),
                "kept": kept,
                "images": remote,
                "panels": panels,
                "remote_photos": config.remote_photos,
                "kinds": APPEARANCE_KINDS,
                "next_url": f"/listing/{next_listing}" if next_listing else None,
                "here": f"/listing/{listing.id}",
            },
        )


def models_page(request: Request) -> Response:
    config: ReviewConfig = request.app.state.config
    return render(request, "models.html", {"rules": config.rules})


def model_page(request: Request) -> Response:
    """A model's serials against first-seen date: every instrument as a point up to MODEL_POINTS_LIMIT, else
    counts per block and month, each bar linking to its serials (a page at a time)."""
    config: ReviewConfig = request.app.state.config
    name = request.path_params["name"]
    rule = config.rules.models.get(name)
    if rule is None:
        raise HTTPException(404, f"no model {name}")
    points: list[model_queries.ModelPoint] = []
    with _read(request) as session:
        cells = model_queries.model_cells(session, rule)  # one pass over the model's rows: totals come with it
        totals = model_queries.ModelTotals(sum(c.count for c in cells), sum(c.flagged for c in cells))
        if totals.instruments <= model_queries.MODEL_POINTS_LIMIT:
            points = model_queries.model_points(session, name)
        estimates = model_estimates(session, rule)
    chart: Chart | DensityChart
    if totals.instruments <= model_queries.MODEL_POINTS_LIMIT:
        chart = model_chart(rule, [(p.serial, p.first_seen, p.flagged, f"/listing/{p.listing_id}") for p in points])
    else:
        chart = density_chart(
            rule,
            [(c.block, c.month, c.count, c.flagged) for c in cells],
            lambda block, first, last: _with_params(
                "/serials",
                model=name,
                block=_block_param(rule, block),
                month=first,
                until=last if last != first else "",
            ),
        )
    context = {
        "rule": rule,
        "chart": chart,
        "dense": isinstance(chart, DensityChart),
        "points": points,
        "totals": totals,
        "estimates": estimates,
        "serials_url": _with_params("/serials", model=name),
        "page_size": model_queries.SERIALS_PAGE_SIZE,
    }
    return render(request, "model.html", context)


def _block_param(rule: ModelRule, index: int) -> str:
    return model_queries.OUTSIDE if index >= len(rule.blocks) else str(index)


def serials_page(request: Request) -> Response:
    """A model's serials, oldest first sighting first, a page at a time (keyset), narrowed to a block and/or a
    month: the raw serials behind a bar of the model's chart."""
    config: ReviewConfig = request.app.state.config
    params = request.query_params
    name = params.get("model", "")
    rule = config.rules.models.get(name)
    if rule is None:
        raise HTTPException(404, f"no model {name!r}")
    try:
        where = model_queries.SerialFilter(
            block=params.get("block", ""), month=params.get("month", ""), until=params.get("until", "")
        )
        block = where.block_index(rule)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    after = None
    if params.get("after"):
        try:
            after = queries.decode_cursor(params["after"])
        except ValueError:
            raise HTTPException(400, "bad page cursor") from None
    with _read(request) as session:
        rows, next_key = model_queries.serials_page(session, rule, where, after)
    if block is None:
        block_name = ""
    elif block < len(rule.blocks):
        block_name = rule.blocks[block].describe()
    else:
        block_name = "outside every block"
    keep = {"model": name, "block": where.block, "month": where.month, "until": where.until}
    context = {
        "rule": rule,
        "rows": rows,
        "block_name": block_name,
        "month": where.month + (f" to {where.until}" if where.until and where.until != where.month else ""),
        "next_url": _with_params("/serials", **keep, after=queries.encode_cursor(*next_key)) if next_key else None,
        "first_url": _with_params("/serials", **keep) if after else None,
    }
    return render(request, "serials.html", context)


# --- decisions ------------------------------------------------------------------------------------------

Decision = Callable[[Session, FormData, str], Any]


async def _decide(request: Request, decision: Decision, done: str, fallback: str, **ids: Any) -> Response:
    """Check the form, run one decision in one transaction, then redirect (or answer JSON for fetch)."""
    form = await checked_form(request)
    user: str = request.state.user
    engine = _engine(request)

    def run() -> None:
        with session_scope(engine) as session:
            decision(session, form, user)

    back = _local_next(str(form.get("next", "")), fallback)
    try:
        await run_in_threadpool(run)
    except review.OutsideBlocks as exc:
        # Keeping a serial outside the model's blocks is a second, explicit step with its own reason.
        if _wants_json(request):
            return JSONResponse({"ok": False, "error": str(exc), "force": True}, status_code=409)
        force = {"serial": exc.serial, "model": _text(form, "model"), "reason": _text(form, "reason")}
        context = {"message": str(exc), "back": back, "force": force, "action": str(request.url.path)}
        return render(request, "force.html", context, status_code=409)
    except review.ReviewError as exc:
        if _wants_json(request):
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=409)
        return render(request, "error.html", {"message": str(exc), "back": back, "heading": "Not done"}, 409)
    target = _with_params(back, done=done, **ids)
    if _wants_json(request):
        answer: dict[str, Any] = {
            "ok": True,
            "message": DONE_MESSAGES[done].format(**{"flag": "?", "appearance": "?", **ids}),
        }
        if done in UNDOABLE and "flag" in ids:
            answer["undo"] = f"/flags/{ids['flag']}/reopen"
        return JSONResponse(answer)
    return RedirectResponse(target, status_code=303)


def _text(form: FormData, name: str) -> str:
    return str(form.get(name, "")).strip()


async def _flag_listing(request: Request, flag_id: int) -> str:
    def find() -> str:
        with _read(request) as session:
            flag = session.get(Flag, flag_id)
            if flag is None:
                raise HTTPException(404, f"no flag {flag_id}")
            return f"/listing/{flag.listing_id}"

    return await run_in_threadpool(find)


async def confirm(request: Request) -> Response:
    flag_id = request.path_params["flag_id"]
    fallback = await _flag_listing(request, flag_id)
    return await _decide(
        request,
        lambda s, f, u: review.confirm(s, flag_id, u, _text(f, "note") or None),
        "confirm",
        fallback,
        flag=flag_id,
    )


async def correct(request: Request) -> Response:
    config: ReviewConfig = request.app.state.config
    flag_id = request.path_params["flag_id"]
    fallback = await _flag_listing(request, flag_id)

    def decide(session: Session, form: FormData, user: str) -> None:
        serial = _text(form, "serial") or None
        model = _text(form, "model") or None
        if serial is None and model is None:
            raise review.ReviewError("give the right serial (or model)")
        force = _text(form, "force") == "1"
        reason = _text(form, "reason")
        review.correct(session, flag_id, user, config.rules, serial=serial, model=model, reason=reason, force=force)

    return await _decide(request, decide, "correct", fallback, flag=flag_id)


async def change_model(request: Request) -> Response:
    config: ReviewConfig = request.app.state.config
    flag_id = request.path_params["flag_id"]
    fallback = await _flag_listing(request, flag_id)

    def decide(session: Session, form: FormData, user: str) -> None:
        review.change_model(session, flag_id, _text(form, "model"), user, config.rules, reason=_text(form, "reason"))

    return await _decide(request, decide, "model", fallback, flag=flag_id)


async def dismiss(request: Request) -> Response:
    flag_id = request.path_params["flag_id"]
    fallback = await _flag_listing(request, flag_id)
    return await _decide(
        request,
        lambda s, f, u: review.dismiss(s, flag_id, u, _text(f, "note") or None),
        "dismiss",
        fallback,
        flag=flag_id,
    )


async def reopen(request: Request) -> Response:
    """Take a decision back: the toast's undo (and `u`) sends `undo=1`; the listing page's reopen does not."""
    flag_id = request.path_params["flag_id"]
    fallback = await _flag_listing(request, flag_id)
    form = await request.form()
    undo = str(form.get("undo", "")) == "1"
    return await _decide(
        request,
        lambda s, f, u: review.reopen(s, flag_id, u, _text(f, "note") or None, undo=undo),
        "undo" if undo else "reopen",
        fallback,
        flag=flag_id,
    )


async def note(request: Request) -> Response:
    flag_id = request.path_params["flag_id"]
    fallback = await _flag_listing(request, flag_id)

    def decide(session: Session, form: FormData, user: str) -> None:
        text = _text(form, "note")
        if not text:
            raise review.ReviewError("the note is empty")
        review.add_note(session, flag_id, user, text)

    return await _decide(request, decide, "note", fallback, flag=flag_id)


async def mark_kind(request: Request) -> Response:
    appearance_id = request.path_params["appearance_id"]

    def decide(session: Session, form: FormData, user: str) -> None:
        review.mark_kind(session, appearance_id, _text(form, "kind"), user, _text(form, "note") or None)

    return await _decide(request, decide, "kind", "/", appearance=appearance_id)


async def mark_different_unit(request: Request) -> Response:
    appearance_id = request.path_params["appearance_id"]

    def decide(session: Session, form: FormData, user: str) -> None:
        later: list[int] = []
        for value in form.getlist("also"):
            try:
                later.append(int(str(value)))
            except ValueError:
                raise review.ReviewError(f"not an appearance id: {value!r}") from None
        review.mark_different_unit(session, appearance_id, user, _text(form, "note") or None, later=later)

    return await _decide(request, decide, "unit", "/", appearance=appearance_id)


# --- errors and the app ---------------------------------------------------------------------------------


async def http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    if _wants_json(request):
        return JSONResponse({"ok": False, "error": detail}, status_code=status)
    if not hasattr(request.state, "csrf_seed"):
        return PlainTextResponse(detail, status_code=status)
    heading = ERROR_TITLES.get(status, "Error")
    return render(request, "error.html", {"message": detail, "back": "/", "heading": heading}, status_code=status)


def feeds_page(request: Request) -> Response:
    """An Atom feed: new sightings, the open queue, or one model's appearances (review/feeds.py)."""
    from review import feeds

    config: ReviewConfig = request.app.state.config
    base = config.public_base_url or str(request.base_url).rstrip("/")
    with _read(request) as session:
        if request.url.path == "/feeds/queue.atom":
            body = feeds.queue_feed(session, base)
        elif request.url.path == "/feeds/sightings.atom":
            body = feeds.sightings_feed(session, base)
        else:
            name = request.path_params["name"]
            if name not in config.rules.models:
                raise HTTPException(404, f"no model {name!r}")
            body = feeds.sightings_feed(session, base, model=name)
    return Response(body, media_type="application/atom+xml")


def create_app(config: ReviewConfig, engine: Engine | None = None) -> Starlette:
    """The review app over `config.db_url` (upgraded to the newest schema first)."""
    engine = engine or make_engine(config.db_url)
    upgrade_engine(engine)
    routes = [
        Route("/", queue_page, name="queue"),
        Route("/listing/{listing_id:int}", listing_page, name="listing"),
        Route("/models", models_page, name="models"),
        Route("/models/{name:path}", model_page, name="model"),
        Route("/serials", serials_page, name="serials"),
        Route("/flags/{flag_id:int}/confirm", confirm, methods=["POST"]),
        Route("/flags/{flag_id:int}/correct", correct, methods=["POST"]),
        Route("/flags/{flag_id:int}/model", change_model, methods=["POST"]),
        Route("/flags/{flag_id:int}/dismiss", dismiss, methods=["POST"]),
        Route("/flags/{flag_id:int}/note", note, methods=["POST"]),
        Route("/flags/{flag_id:int}/reopen", reopen, methods=["POST"]),
        Route("/appearances/{appearance_id:int}/kind", mark_kind, methods=["POST"]),
        Route("/appearances/{appearance_id:int}/unit", mark_different_unit, methods=["POST"]),
        Route("/feeds/sightings.atom", feeds_page, name="feed_sightings"),
        Route("/feeds/queue.atom", feeds_page, name="feed_queue"),
        Route("/feeds/models/{name:path}.atom", feeds_page, name="feed_model"),
        Route("/photos/{sha}", photos.photo_file, name="photo"),
        Route("/photos/{sha}/thumb", photos.photo_file, name="photo_thumb"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    handler: Callable[[Request, Exception], Awaitable[Response]] = http_error
    app = Starlette(
        routes=routes,
        middleware=[Middleware(GuardMiddleware, config=config)],
        exception_handlers={HTTPException: handler, 404: handler, 405: handler},
    )
    app.state.config = config
    app.state.engine = engine
    app.state.read_engine = engine.execution_options(**{READ_OPTION: True})
    app.state.templates = _templates()
    app.state.photo_root = config.photo_root or photos.default_photo_root()
    return app

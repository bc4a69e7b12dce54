"""/desk/: the syndication desk's dashboard (feeds, audience, outbox, partners, alerts) and its JSON.

Behind FEEDSVC_DESK_TOKENS (none: /desk/ answers 404). A person signs in once with a token through
the login form (a POST with a CSRF token, Flask-WTF) and gets Flask's signed session cookie (HttpOnly,
SameSite=Strict, Secure on an https site, sent to /desk/ only); tools send `Authorization: Bearer
<token>`. No credential: 401; a wrong one: 403; a POST without its CSRF token: 400. Views are thin:
the figures come from feedsvc/web/desk_figures.py, the plots from desk_charts.py.
"""
from __future__ import annotations

import hmac
from datetime import datetime, timedelta, timezone

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFProtect

from feedsvc import store
from feedsvc.config import token_digest, token_matches
from feedsvc.ops import desk_counters, partners, user_agents
from feedsvc.ops.partners import usage_day
from feedsvc.publish import websub
from feedsvc.web import db, desk_charts, desk_figures
from feedsvc.web.documents import site
from feedsvc.web.errors import json_error

bp = Blueprint("desk", __name__, url_prefix="/desk")
csrf = CSRFProtect()
_SIZES = "feedsvc.desk_sizes"
SESSION_KEY = "desk_token"
SESSION_HOURS = 12
ALERT_WINDOW = timedelta(hours=1)
LEFT_OUT_WINDOW = timedelta(days=7)   # items left out are shown while a render saw them this recently


@bp.record_once
def _setup(state) -> None:
    app: Flask = state.app
    # CSRF is checked for the desk's POSTs only (below): the ingest API's clients send no form.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_SECURE=app.config["SITE_URL"].startswith("https://"),
                      SESSION_COOKIE_PATH=f"{bp.url_prefix}/", PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS))
    csrf.init_app(app)
    app.extensions[_SIZES] = desk_figures.RenderedSizes()


# ---- who may see the desk ----------------------------------------------------------------------

def _session_token_valid(digests: list[str]) -> bool:
    # The session keeps the first half of the token's SHA-256: removing a token from DESK_TOKENS ends its sessions.
    held = session.get(SESSION_KEY)
    matched = False
    for digest in digests:
        matched |= isinstance(held, str) and hmac.compare_digest(held, digest[:32])
    return matched


def _refused(status: int, message: str):
    if request.path.startswith(f"{bp.url_prefix}/api/"):
        response = json_error(status, message)
    else:
        response = current_app.make_response((render_template("desk/login.html", message=message,
                                                              next=request.full_path), status))
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="feedsvc-desk"'
    return response


@bp.before_request
def _gate():
    digests = current_app.config["DESK_TOKEN_DIGESTS"]
    if not digests:
        abort(404)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme:
        if scheme.lower() != "bearer" or not token.strip():
            return _refused(401, "a bearer token is required (Authorization: Bearer <token>)")
        if not token_matches(token.strip(), digests):
            return _refused(403, "this token is not one of FEEDSVC_DESK_TOKENS")
        return None   # no CSRF check: a forged cross-site request cannot carry this header
    if request.method == "POST":
        csrf.protect()   # CSRFError: 400, before a token or a session is looked at
    if request.endpoint == "desk.login" or _session_token_valid(digests):
        return None
    return _refused(401, "sign in with a desk token")


@bp.after_request
def _private(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = request.values.get("next", "")
    if not target.startswith(bp.url_prefix + "/") or target.startswith("//"):
        target = url_for("desk.feeds_view")
    if request.method == "GET":
        return render_template("desk/login.html", next=target)
    token = request.form.get("token", "").strip()
    if not token:
        return _refused(401, "a desk token is required")
    digests = current_app.config["DESK_TOKEN_DIGESTS"]
    if not token_matches(token, digests):
        return _refused(403, "this token is not one of FEEDSVC_DESK_TOKENS")
    session.clear()
    session.permanent = True
    session[SESSION_KEY] = token_digest(token)[:32]
    return redirect(target, 303)


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("desk.login"), 303)


# ---- views --------------------------------------------------------------------------------------

def _today():
    return usage_day(datetime.now(timezone.utc), current_app.config["TIMEZONE"])


def _figures() -> list[desk_figures.FeedFigures]:
    desk_counters.counters(current_app).flush()   # this process's latest counts, not only the last write's
    return desk_figures.feed_figures(db.connection(), site(), current_app.extensions[_SIZES], _today())


@bp.get("/")
def feeds_view():
    rows = _figures()
    sort = request.args.get("sort", "problems")
    sort = sort if sort in desk_figures.SORT_KEYS else "problems"
    descending = request.args.get("order", "asc" if sort == "name" else "desc") != "asc"
    kind, fmt = request.args.get("kind", ""), request.args.get("format", "")
    rows = [r for r in rows if (not kind or r.kind == kind) and (not fmt or r.fmt == fmt)]
    if request.args.get("problems"):
        rows = [r for r in rows if r.problems]
    return render_template("desk/feeds.html", rows=desk_figures.sort_figures(rows, sort, descending), sort=sort,
                           descending=descending, kind=kind, fmt=fmt, budgets=desk_figures.BUDGETS,
                           mb=desk_figures.MB, filters=request.args)


@bp.get("/audience")
def audience_view():
    desk_counters.counters(current_app).flush()
    found = desk_figures.audience(db.connection(), _today())
    subscribers = desk_charts.time_series("सब्सक्राइबर (Subscribers reported)", found.days,
                                          {"subscribers": found.subscribers_per_day})
    polls = desk_charts.time_series("पोल प्रति दिन (Polls per day)", found.days,
                                    {"200": found.polls_per_day, "304": found.not_modified_per_day})
    pollers = desk_charts.time_series("अलग-अलग पोलर (Distinct pollers by reader)", found.days,
                                      {user_agents.label(f): v for f, v in found.pollers_by_family.items()} or {"-": []})
    return render_template("desk/audience.html", audience=found, charts=[subscribers, polls, pollers],
                           label=user_agents.label)


@bp.get("/outbox")
def outbox_view():
    publisher = websub.publisher()
    conn = db.connection()
    return render_template("desk/outbox.html",
                           hubs=websub.hub_status(conn, publisher.settings.targets, store.now_utc()),
                           failed=desk_figures.failed_notifications(conn))


@bp.post("/outbox/retry")
def outbox_retry():
    raw = request.form.get("id", "")
    row_id = int(raw) if raw.isdigit() else None
    with db.engine().begin() as conn:
        desk_figures.retry_now(conn, row_id)
    return redirect(url_for("desk.outbox_view"), 303)


@bp.get("/partners")
def partners_view():
    desk_counters.counters(current_app).flush()
    conn = db.connection()
    days, per_partner = desk_figures.partner_days(conn, _today())
    charts = [desk_charts.time_series(title, days, {name: [getattr(day, field) / unit for day in counts]
                                                    for name, counts in per_partner.items()} or {"-": []})
              for title, field, unit in (("पार्टनर अनुरोध (Partner requests per day)", "requests", 1),
                                         ("पार्टनर 304 (Partner 304s per day)", "not_modified", 1),
                                         ("पार्टनर को भेजे MB (MB sent to partners per day)", "bytes", desk_figures.MB))]
    return render_template("desk/partners.html", days=days, per_partner=per_partner, charts=charts,
                           keys=partners.all_partners(conn))


@bp.get("/alerts")
def alerts_view():
    rows = _figures()
    conn = db.connection()
    return render_template(
        "desk/alerts.html", over=[r for r in rows if r.budgets_over], mb=desk_figures.MB,
        invalid=[r for r in rows if r.validation is not None and not r.validation.ok],
        left_out=desk_counters.left_out_since(conn, store.now_utc() - LEFT_OUT_WINDOW),
        due=desk_figures.embargoes_due(conn, ALERT_WINDOW))


@bp.get("/api/feeds")
def api_feeds():
    return jsonify({"feeds": [row.as_json() for row in _figures()]})

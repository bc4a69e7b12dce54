"""The ingest API for the CMS: PUT, GET and DELETE /api/articles/<id>, and POST
/api/scopes/<kind>/<key>/rename, behind bearer tokens (wrong ones limited)."""
from __future__ import annotations

import json
from collections.abc import Sequence

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from feedsvc import store
from feedsvc.config import token_matches
from feedsvc.ingest import images, rename, write
from feedsvc.ingest.records import Problem, RecordError, parse_record
from feedsvc.web import db, ratelimit
from feedsvc.web.errors import json_error

# HTTP errors raised in these views answer in JSON too (errors.JSON_BLUEPRINTS names this blueprint).
bp = Blueprint("api", __name__, url_prefix="/api")


def _token_matches(presented: str) -> bool:
    return token_matches(presented, current_app.config["API_TOKEN_DIGESTS"])


@bp.before_request
def require_token():
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return json_error(401, "a bearer token is required (Authorization: Bearer <token>)",
                          headers={"WWW-Authenticate": 'Bearer realm="feedsvc"'})
    ratelimit.refuse_after_failed_authentications()   # 429 before the token is even compared
    if not _token_matches(token.strip()):
        ratelimit.count_failed_authentication()
        return json_error(403, "this token is not allowed to write articles")


def _etag(version: int) -> str:
    return f'"v{version}"'


def _expected_version() -> int | None:
    """The version named by If-Match ("v3"), or None when the writer sent no precondition."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    value = header.strip()
    if value == "*":
        return None
    if value.startswith('"v') and value.endswith('"') and value[2:-1].isdigit():
        return int(value[2:-1])
    raise RecordError([Problem("If-Match", 'expected an ETag of this API such as "v3"')])


def _write_response(result: write.WriteResult, status: int, warnings: Sequence[Problem] = ()):
    body = {"id": result.article_id, "outcome": result.outcome, "version": result.version}
    if warnings:  # what was corrected or left out of a record stored anyway (a wrong image size, a bad file)
        body["warnings"] = [{"field": w.field, "reason": w.reason} for w in warnings]
    response = jsonify(body)
    response.status_code = status
    response.headers["ETag"] = _etag(result.version)
    return response


@bp.errorhandler(RecordError)
def invalid_record(exc: RecordError):
    body = exc.as_json()  # the record contract's own account: {"error": ..., "source": ..., "problems": [...]}
    return json_error(422, body.pop("error"), **body)


@bp.errorhandler(write.VersionConflict)
def version_conflict(exc: write.VersionConflict):
    return json_error(412, str(exc), stored_version=exc.actual)


@bp.errorhandler(write.ConcurrentWrite)
def concurrent_write(exc: write.ConcurrentWrite):
    # Another writer got in between our read and our write: a precondition failed if one was sent.
    status = 412 if "If-Match" in request.headers else 409
    return json_error(status, "the article was changed by another writer at the same time; fetch it and retry")


@bp.errorhandler(write.StaleWrite)
def stale_write(exc: write.StaleWrite):
    return json_error(409, str(exc))


@bp.errorhandler(write.NotFound)
def not_found(exc: write.NotFound):
    return json_error(404, f"no article with id '{exc}'")


@bp.errorhandler(rename.BadRename)
def bad_rename(exc: rename.BadRename):
    return json_error(422, "invalid rename", message=str(exc))


@bp.errorhandler(rename.UnknownScope)
def unknown_scope(exc: rename.UnknownScope):
    return json_error(404, str(exc))


def _body(limit: int) -> bytes:
    """The request body, or 413 when it is longer than `limit`: a chunked body has no Content-Length
    to refuse up front, and read whole it would be cut at the limit and parsed as if complete."""
    chunks, size = [], 0
    try:
        while size <= limit:
            chunk = request.stream.read(limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except RequestEntityTooLarge:  # werkzeug's stream, capped at the limit, asked for one byte more
        size = limit + 1
    if size > limit:
        raise RequestEntityTooLarge(f"the body is longer than {limit} bytes")
    return b"".join(chunks)


@bp.put("/articles/<article_id>")
def put_article(article_id: str):
    if not request.is_json:
        return json_error(415, "send the record as application/json")
    try:
        raw = _body(current_app.config["MAX_CONTENT_LENGTH"])
    except HTTPException:
        raise  # werkzeug's own 400 (the client went away mid-body)
    except Exception as exc:  # noqa: BLE001 - the WSGI server's parse error (gunicorn: a broken chunked body)
        return json_error(400, f"the request body could not be read: {exc}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return json_error(400, f"the body is not valid UTF-8 JSON: {exc}")
    except RecursionError:
        return json_error(400, "the body is not valid JSON for a record: it is nested too deeply")
    if isinstance(data, dict) and data.get("id", article_id) != article_id:
        raise RecordError([Problem("id", f"'{data.get('id')}' does not match the URL's '{article_id}'")])
    if isinstance(data, dict):
        data.setdefault("id", article_id)
    article = parse_record(data, site_url=current_app.config["SITE_URL"], source=f"PUT /api/articles/{article_id}",
                           json_text=raw, frame_hosts=current_app.config["FRAME_HOSTS"],
                           images=images.settings_from(current_app.config))
    result = write.commit_write(db.engine(), write.upsert, article, site_name=current_app.config["SITE_NAME"],
                                 expected_version=_expected_version())
    return _write_response(result, 201 if result.outcome == "created" else 200, article.warnings)


@bp.get("/articles/<article_id>")
def get_article(article_id: str):
    row = store.article_row(db.connection(), article_id)
    if row is None:
        raise write.NotFound(article_id)
    response = current_app.response_class(row.record, mimetype="application/json")
    response.headers["ETag"] = _etag(row.version)
    return response


@bp.delete("/articles/<article_id>")
def delete_article(article_id: str):
    result = write.commit_write(db.engine(), write.withdraw, article_id,
                                 site_name=current_app.config["SITE_NAME"], expected_version=_expected_version())
    return _write_response(result, 200)


@bp.post("/scopes/<kind>/<key>/rename")
def rename_scope(kind: str, key: str):
    """{"to": "<new key>", "name": "<optional new name>"}: every article moves to the new key, the old
    key's feeds and listing answer 301 (feedsvc/ingest/rename.py)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("to"), str) \
            or not isinstance(data.get("name", ""), str):
        return json_error(400, 'send {"to": "<new key>"} as application/json, with an optional "name"')
    with db.engine().begin() as conn:
        result = rename.rename_scope(conn, kind, key, data["to"], name=data.get("name"),
                                     site_name=current_app.config["SITE_NAME"])
    return jsonify(result.as_json())

"""Article images shipped with the records (`articles/media/`), served at /media/ and /healthz."""
from flask import Blueprint, current_app, send_from_directory
from sqlalchemy import text

from feedsvc.web import db

bp = Blueprint("media", __name__)


@bp.get("/media/<path:name>")
def media(name: str):
    # send_from_directory refuses paths that leave the folder (../), answering 404.
    response = send_from_directory(current_app.config["MEDIA_DIR"], name, max_age=86400)
    return response


@bp.get("/healthz")
def healthz():
    db.connection().execute(text("SELECT 1"))
    return {"status": "ok"}

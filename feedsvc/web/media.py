"""Article images shipped with the records (`articles/media/`), served at /media/."""
from flask import Blueprint, current_app, send_from_directory

bp = Blueprint("media", __name__)


@bp.get("/media/<path:name>")
def media(name: str):
    # send_from_directory refuses paths that leave the folder (../), answering 404.
    return send_from_directory(current_app.config["MEDIA_DIR"], name, max_age=86400)

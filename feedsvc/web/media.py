"""Article images shipped with the records (`articles/media/`), served at /media/, and their renditions.

A rendition's name holds its source's hash (feedsvc/ingest/images.py), so its bytes never change and it
is cached for a year without revalidation; a missing one is made here, once, under a per-file lock.
Only configured sizes exist: a query string changes nothing, and an unknown size is a 404.
"""
from flask import Blueprint, abort, current_app, send_file, send_from_directory

from feedsvc.ingest import images

bp = Blueprint("media", __name__)

IMMUTABLE_MAX_AGE = 365 * 24 * 3600
# Files, not documents: the one conditional-GET path (web/http.py, through web/documents.py) decides a
# 304 from the store's change counters, which a file on disk has none of. Flask's send_file answers
# these from the file itself (its ETag from name, mtime and size; Range requests too).


@bp.get("/media/<path:name>")
def media(name: str):
    # send_from_directory refuses paths that leave the folder (../), answering 404.
    return send_from_directory(current_app.config["MEDIA_DIR"], name, max_age=86400)


@bp.get(f"/media/{images.RENDITIONS_DIR}/<size>/<key>/<path:name>")
def rendition(size: str, key: str, name: str):
    path = images.ensure_rendition(images.settings_from(current_app.config), size, key, name)
    if path is None:
        abort(404)
    response = send_file(path, max_age=IMMUTABLE_MAX_AGE, conditional=True)
    response.cache_control.public = True
    response.cache_control.immutable = True
    return response

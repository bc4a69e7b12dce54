"""/healthz for load balancers and orchestrators: 200 while the article store answers a query."""
from flask import Blueprint
from sqlalchemy import text

from feedsvc.web import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    # A store that cannot answer raises here, and the store-outage handler answers 503 (errors.py).
    db.connection().execute(text("SELECT 1"))
    return {"status": "ok"}
